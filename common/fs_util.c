/*  fs_util - clocks, random ids, RFC 3339 timestamps and small string helpers. */
#include "finestra.h"
#include <sodium.h>         /* only here: the one place that needs randomness */

int64_t
fs_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
fs_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fs_uuid (char *out)
{
    //  sodium_init is idempotent and thread-safe; the flag only saves the call
    static atomic_bool s_sodium_ready = false;
    if (!atomic_load (&s_sodium_ready)) {
        //  Fails only without an entropy source; randombytes_buf would then
        //  abort anyway, and an id that may repeat is worse than stopping
        if (sodium_init () < 0)
            abort ();
        atomic_store (&s_sodium_ready, true);
    }
    unsigned char b [16];
    randombytes_buf (b, sizeof b);
    b [6] = (b [6] & 0x0f) | 0x40;      //  version 4
    b [8] = (b [8] & 0x3f) | 0x80;      //  RFC 4122 variant
    static const char hex [] = "0123456789abcdef";
    size_t pos = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out [pos++] = '-';
        out [pos++] = hex [b [i] >> 4];
        out [pos++] = hex [b [i] & 15];
    }
    out [pos] = 0;
}

//  The range fs_rfc3339 can print in its fixed 24 characters: years 0000..9999
#define S_MS_MIN  (-62167219200000LL)   /* 0000-01-01T00:00:00.000Z */
#define S_MS_MAX  (253402300799999LL)   /* 9999-12-31T23:59:59.999Z */

void
fs_rfc3339 (int64_t ms, char *out)
{
    if (ms < S_MS_MIN)
        ms = S_MS_MIN;
    if (ms > S_MS_MAX)
        ms = S_MS_MAX;
    //  floor division, so times before 1970 keep a positive millisecond part
    int64_t secs = ms / 1000;
    int64_t frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    time_t t = (time_t) secs;
    struct tm tm;
    gmtime_r (&t, &tm);
    unsigned year = (unsigned) (tm.tm_year + 1900) % 10000u;
    snprintf (out, 25, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
              year, (unsigned) (tm.tm_mon + 1) % 100u, (unsigned) tm.tm_mday % 100u,
              (unsigned) tm.tm_hour % 100u, (unsigned) tm.tm_min % 100u,
              (unsigned) tm.tm_sec % 100u, (unsigned) frac % 1000u);
}

//  Reads exactly n decimal digits; -1 if any is not a digit.
static int
s_digits (const char *p, int n)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (p [i] < '0' || p [i] > '9')
            return -1;
        value = value * 10 + (p [i] - '0');
    }
    return value;
}

static int
s_days_in_month (int year, int month)
{
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days [month - 1];
}

int
fs_rfc3339_parse (const char *text, int64_t *ms)
{
    if (!text)
        return -1;
    //  date-time = full-date "T" full-time (RFC 3339 section 5.6); every
    //  character is checked in order, so running off the end stops at the NUL
    const char *p = text;
    int year = s_digits (p, 4);
    if (year < 0 || p [4] != '-')
        return -1;
    int month = s_digits (p + 5, 2);
    if (month < 1 || month > 12 || p [7] != '-')
        return -1;
    int day = s_digits (p + 8, 2);
    if (day < 1 || day > s_days_in_month (year, month))
        return -1;
    if (p [10] != 'T' && p [10] != 't')
        return -1;
    p += 11;
    int hour = s_digits (p, 2);
    if (hour < 0 || hour > 23 || p [2] != ':')
        return -1;
    int minute = s_digits (p + 3, 2);
    if (minute < 0 || minute > 59 || p [5] != ':')
        return -1;
    int second = s_digits (p + 6, 2);
    if (second < 0 || second > 60)     //  60: a leap second, which timegm carries over
        return -1;
    p += 8;

    int millis = 0;
    if (*p == '.') {
        p++;
        int ndigits = 0;
        while (*p >= '0' && *p <= '9') {
            if (ndigits < 3)
                millis = millis * 10 + (*p - '0');
            ndigits++;
            p++;
        }
        if (ndigits < 1 || ndigits > 9)
            return -1;
        for (int i = ndigits; i < 3; i++)
            millis *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else
    if (*p == '+' || *p == '-') {
        int sign = *p == '-'? -1: 1;
        int oh = s_digits (p + 1, 2);
        if (oh < 0 || oh > 23 || p [3] != ':')
            return -1;
        int om = s_digits (p + 4, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
        p += 6;
    }
    else
        return -1;
    if (*p != 0)
        return -1;

    struct tm tm = {
        .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
        .tm_hour = hour, .tm_min = minute, .tm_sec = second
    };
    time_t t = timegm (&tm);
    if (ms)
        *ms = ((int64_t) t - (int64_t) offset_min * 60) * 1000 + millis;
    return 0;
}

char *
fs_strdup (const char *s)
{
    return s? strdup (s): NULL;
}

void
fs_free (void *p_p)
{
    void **pointer_p = (void **) p_p;
    if (pointer_p && *pointer_p) {
        free (*pointer_p);
        *pointer_p = NULL;
    }
}

#define S_BACKOFF_FIRST_MS  100
#define S_BACKOFF_MAX_MS    2000
#define S_SLEEP_SLICE_MS    50      /* how often a back-off sleep looks at zsys_interrupted */

int
fs_retry (const char *what, int timeout_ms, fs_attempt_fn *attempt,
          const char *(*why) (void *arg), void *arg, bool *interrupted)
{
    int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    int delay = S_BACKOFF_FIRST_MS;
    int attempts = 0;
    *interrupted = false;
    while (true) {
        attempts++;
        if (attempt (arg) == 0) {
            if (attempts > 1) {
                char count [16];
                snprintf (count, sizeof count, "%d", attempts);
                fs_info ("connected after retrying", "to", what, "attempts", count);
            }
            return 0;
        }
        if (attempts == 1 && timeout_ms > 0)
            fs_info ("not reachable yet, retrying", "to", what, "reason", why (arg));
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || zsys_interrupted)
            break;
        //  Sleeps in slices so an interrupt (SIGINT, SIGTERM) ends the wait at once
        int64_t until = zclock_mono () + (delay < left ? delay : left);
        while (!zsys_interrupted && zclock_mono () < until)
            zclock_sleep (S_SLEEP_SLICE_MS);
        if (zsys_interrupted)
            break;
        delay = delay * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : delay * 2;
    }
    *interrupted = zsys_interrupted != 0;
    return -1;
}
