/*  fs_util - small helpers every class uses: time, ids, bounded strings. */
#ifndef FS_UTIL_H_INCLUDED
#define FS_UTIL_H_INCLUDED

#define FS_UUID_LEN 36          /* canonical text form, without the NUL */

/* Wall-clock milliseconds since the Unix epoch. */
int64_t fs_now_ms (void);
/* Monotonic milliseconds, for timeouts. */
int64_t fs_mono_ms (void);
/* Writes a fresh random (v4) UUID and a NUL into out[FS_UUID_LEN + 1]. */
void fs_uuid (char *out);
/* Formats epoch ms as RFC 3339 UTC with milliseconds: out must hold 25 bytes. */
void fs_rfc3339 (int64_t ms, char *out);
/* Parses RFC 3339 (Z or +hh:mm offset, optional fraction). Returns 0 and sets *ms, or -1. */
int fs_rfc3339_parse (const char *text, int64_t *ms);
/* One connection attempt for fs_retry: 0 on success, -1 on failure. */
typedef int (fs_attempt_fn) (void *arg);
/* Calls attempt (arg) until it succeeds, with exponential back-off (100 ms doubling to 2 s),
   for at most timeout_ms (0 = once). Stops early when zsys_interrupted is set (*interrupted
   then true). Logs the first failure and a late success under `what`, with why (arg) as the
   reason. 0 on success, -1 otherwise. */
int fs_retry (const char *what, int timeout_ms, fs_attempt_fn *attempt,
              const char *(*why) (void *arg), void *arg, bool *interrupted);
/* strdup that returns NULL for NULL. */
char *fs_strdup (const char *s);
/* Frees *p and sets it to NULL. */
void fs_free (void *p_p);

#endif
