/*  intake_registry_norm - matching keys for the registry: folded names, documents, addresses. */
#include "intake_rules.h"

//  Latin-1 supplement letters (U+00C0..U+00FF, UTF-8 C3 80..C3 BF) folded to ASCII;
//  0 where the code point is not a letter we fold (× ÷)
static const char s_latin1 [64] =
    "aaaaaaaceeeeiiii"      //  À Á Â Ã Ä Å Æ Ç È É Ê Ë Ì Í Î Ï
    "dnooooo\0ouuuuyts"     //  Ð Ñ Ò Ó Ô Õ Ö × Ø Ù Ú Û Ü Ý Þ ß
    "aaaaaaaceeeeiiii"      //  à á â ã ä å æ ç è é ê ë ì í î ï
    "dnooooo\0ouuuuyty";    //  ð ñ ò ó ô õ ö ÷ ø ù ú û ü ý þ ÿ

void
intake_fold (const char *text, char *out, size_t outlen)
{
    assert (out && outlen > 0);
    size_t n = 0;
    bool gap = false;               //  a separator is pending between tokens
    const unsigned char *p = (const unsigned char *) (text ? text : "");
    while (*p) {
        char ascii = 0;
        size_t keep = 0;            //  bytes of an unknown letter kept as they are
        if (isalnum (*p) && *p < 0x80)
            ascii = (char) tolower (*p), keep = 0;
        else
        if (*p == 0xC3 && p [1] >= 0x80 && p [1] <= 0xBF)
            ascii = s_latin1 [p [1] - 0x80];
        else
        if (*p == 0xC2 && p [1] == 0xB7) {
            p += 2;                 //  l·l (punt volat) is one letter pair: no separator
            continue;
        }
        else
        if (*p == '.' && n > 0 && out [n - 1] == 'l' && (p [1] == 'l' || p [1] == 'L')) {
            p++;                    //  l.l, as l·l is often typed
            continue;
        }
        else
        if (*p >= 0xC4) {
            //  Other letters (Cyrillic, Arabic, ...) stay, whole sequence
            keep = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
            if (*p == 0xE2 && p [1] == 0x80)
                keep = 0;           //  U+2000..203F: punctuation (’ – …), a separator
        }
        size_t step = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        for (size_t i = 1; i < step; i++)
            if (!p [i]) { step = i; keep = 0; break; }     //  truncated sequence
        if (ascii || keep) {
            size_t need = ascii ? 1 : keep;
            if (gap && n > 0) {
                if (n + 1 >= outlen)
                    break;
                out [n++] = ' ';
            }
            gap = false;
            if (n + need >= outlen)
                break;
            if (ascii)
                out [n++] = ascii;
            else
                memcpy (out + n, p, keep), n += keep;
        }
        else
            gap = true;
        p += step;
    }
    out [n] = 0;
}

//  Particles dropped from names: they are written, left out or moved at will
static bool
s_particle (const char *token)
{
    static const char *particles [] = {
        "de", "del", "dels", "la", "las", "los", "les", "el", "els", "i", "y", "d", "l",
        "da", "das", "do", "dos", "di", "du", "van", "von", "der", NULL
    };
    for (size_t i = 0; particles [i]; i++)
        if (streq (particles [i], token))
            return true;
    return false;
}

static int
s_strcmp (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

#define S_MAX_TOKENS 32

//  Splits folded text into tokens; drops particles unless only particles are left
static size_t
s_tokens (char *folded, char **tokens, bool drop_particles)
{
    size_t n = 0, kept = 0;
    for (char *tok = strtok (folded, " "); tok && n < S_MAX_TOKENS; tok = strtok (NULL, " "))
        tokens [n++] = tok;
    if (!drop_particles)
        return n;
    char *out [S_MAX_TOKENS];
    for (size_t i = 0; i < n; i++)
        if (!s_particle (tokens [i]))
            out [kept++] = tokens [i];
    if (kept == 0)
        return n;           //  a name made of particles only keeps them
    memcpy (tokens, out, kept * sizeof (char *));
    return kept;
}

static void
s_join (char **tokens, size_t n, char *out, size_t outlen)
{
    out [0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat (out, " ", outlen - strlen (out) - 1);
        strncat (out, tokens [i], outlen - strlen (out) - 1);
    }
}

void
intake_name_key (const char *given, const char *family, char *out, size_t outlen)
{
    char joined [1024], folded [1024];
    snprintf (joined, sizeof joined, "%s %s", given ? given : "", family ? family : "");
    intake_fold (joined, folded, sizeof folded);
    char *tokens [S_MAX_TOKENS];
    size_t n = s_tokens (folded, tokens, true);
    qsort (tokens, n, sizeof (char *), s_strcmp);
    s_join (tokens, n, out, outlen);
}

bool
intake_doc_normalize (const char *doc_type, const char *number, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = number ? number : ""; *p && n + 1 < outlen; p++)
        if (*p != ' ' && *p != '-' && *p != '.' && *p != '\t')
            out [n++] = (char) toupper ((unsigned char) *p);
    out [n] = 0;
    if (!doc_type || streq (doc_type, "PASSPORT"))
        return true;
    static const char letters [] = "TRWAGMYFPDXBNJZSQVHLCKE";
    char digits [9];
    if (streq (doc_type, "DNI")) {
        if (n != 9)
            return false;
        memcpy (digits, out, 8);
    }
    else
    if (streq (doc_type, "NIE")) {
        const char *prefix = strchr ("XYZ", out [0]);
        if (n != 9 || !out [0] || !prefix)
            return false;
        digits [0] = (char) ('0' + (prefix - "XYZ"));
        memcpy (digits + 1, out + 1, 7);
    }
    else
        return false;
    digits [8] = 0;
    for (int i = 0; i < 8; i++)
        if (!isdigit ((unsigned char) digits [i]))
            return false;
    return out [8] == letters [atol (digits) % 23];
}

//  Street-type words written many ways, unified
static const char *
s_street_word (const char *token)
{
    static const char *words [][2] = {
        { "carrer", "c" }, { "calle", "c" }, { "c", "c" }, { "cl", "c" }, { "cr", "c" },
        { "avinguda", "av" }, { "avenida", "av" }, { "av", "av" }, { "avda", "av" },
        { "passeig", "pg" }, { "paseo", "pg" }, { "pg", "pg" }, { "pso", "pg" },
        { "placa", "pl" }, { "plaza", "pl" }, { "pl", "pl" }, { "pza", "pl" },
        { "ronda", "rda" }, { "rda", "rda" }, { "travessera", "trav" }, { "trav", "trav" },
    };
    for (size_t i = 0; i < sizeof words / sizeof words [0]; i++)
        if (streq (words [i][0], token))
            return words [i][1];
    return token;
}

void
intake_address_key (const char *street, const char *number, const char *postcode,
                    char *out, size_t outlen)
{
    char folded [1024], street_key [600], number_key [64];
    intake_fold (street, folded, sizeof folded);
    char *tokens [S_MAX_TOKENS];
    size_t n = s_tokens (folded, tokens, true);
    for (size_t i = 0; i < n; i++)
        tokens [i] = (char *) s_street_word (tokens [i]);
    s_join (tokens, n, street_key, sizeof street_key);
    //  "7 bis", "7-B" and "7b" are one number
    intake_fold (number, folded, sizeof folded);
    size_t k = 0;
    for (char *p = folded; *p && k + 1 < sizeof number_key; p++)
        if (*p != ' ')
            number_key [k++] = *p;
    number_key [k] = 0;
    snprintf (out, outlen, "%s|%s|%s", postcode ? postcode : "", street_key, number_key);
}

//  Civil-date arithmetic (proleptic Gregorian), days since 1970-01-01
int64_t
intake_date_days (const char *text)
{
    int y, m, d;
    if (!text || sscanf (text, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
intake_date_format (int64_t days, char *out)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    snprintf (out, 11, "%04d-%02d-%02d", (int) y, (int) m, (int) d);
}
