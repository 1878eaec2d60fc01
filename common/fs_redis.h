/*  fs_redis - a Redis connection that reconnects after loss; every reply checked. */
#ifndef FS_REDIS_H_INCLUDED
#define FS_REDIS_H_INCLUDED

typedef struct fs_redis_s fs_redis_t;

/* Parses redis://[:password@]host[:port][/db]. NULL (and err filled) if the URL is bad. */
fs_redis_t *fs_redis_new (const char *url, char *err, size_t errlen);
void fs_redis_destroy (fs_redis_t **self_p);

/* Connects (AUTH and SELECT as the URL says), retrying with back-off until timeout_ms.
   0 or -1 with fs_redis_error set. */
int fs_redis_connect (fs_redis_t *self, int timeout_ms);
/* Runs one command (hiredis format). Returns the reply (caller freeReplyObject) or NULL on
   failure: I/O error (the context is dropped and rebuilt on the next call, never reused) or
   an error reply (freed here, its text in fs_redis_error). */
redisReply *fs_redis_command (fs_redis_t *self, const char *fmt, ...);
/* PING: 0 when the server answers PONG. */
int fs_redis_ping (fs_redis_t *self);
const char *fs_redis_error (fs_redis_t *self);

#endif
