/*  fs_log - one JSON object per line on stderr: ts, level, service, msg, fields.
    The level is checked before any formatting work is done. */
#ifndef FS_LOG_H_INCLUDED
#define FS_LOG_H_INCLUDED

typedef enum { FS_LOG_DEBUG = 0, FS_LOG_INFO, FS_LOG_WARN, FS_LOG_ERROR } fs_log_level_t;

/* Set once at start-up, before threads start. */
void fs_log_init (const char *service, fs_log_level_t level);
/* "debug"|"info"|"warn"|"error" -> level; -1 if unknown. */
int fs_log_level_parse (const char *name);
extern fs_log_level_t fs_log_threshold;

/* Writes one line. After msg come key/value string pairs, then NULL:
       fs_log_write (FS_LOG_INFO, "relay sent", "consumer", name, "count", "12", NULL);
   Values are JSON-escaped; a NULL value is written as null. Thread-safe (one write(2)). */
void fs_log_write (fs_log_level_t level, const char *msg, ...);

#define fs_log(level, ...) \
    do { if ((level) >= fs_log_threshold) fs_log_write ((level), __VA_ARGS__); } while (0)
#define fs_debug(...) fs_log (FS_LOG_DEBUG, __VA_ARGS__, NULL)
#define fs_info(...)  fs_log (FS_LOG_INFO,  __VA_ARGS__, NULL)
#define fs_warn(...)  fs_log (FS_LOG_WARN,  __VA_ARGS__, NULL)
#define fs_error(...) fs_log (FS_LOG_ERROR, __VA_ARGS__, NULL)

#endif
