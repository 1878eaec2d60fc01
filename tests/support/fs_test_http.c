/*  fs_test_http - a minimal HTTP/1.1 client over a TCP socket, for testing the endpoints. */
#include "fs_test.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <strings.h>

static int
s_send_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t rc = send (fd, data, size, MSG_NOSIGNAL);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        data += rc;
        size -= (size_t) rc;
    }
    return 0;
}

//  Reads until the peer closes; returns a malloc'd NUL-terminated buffer, or NULL.
static char *
s_read_all (int fd, size_t *size_p)
{
    size_t size = 0, capacity = 4096;
    char *data = malloc (capacity);
    while (data) {
        if (size + 1 == capacity) {
            char *bigger = realloc (data, capacity * 2);
            if (!bigger)
                break;
            data = bigger;
            capacity *= 2;
        }
        ssize_t rc = recv (fd, data + size, capacity - size - 1, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            break;              //  includes the receive timeout
        if (rc == 0) {
            data [size] = 0;
            *size_p = size;
            return data;
        }
        size += (size_t) rc;
    }
    free (data);
    return NULL;
}

int
fs_test_http_request (int port, const char *method, const char *path, int *status,
                      char **headers, char **body)
{
    if (headers)
        *headers = NULL;
    if (body)
        *body = NULL;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    //  A server that never answers fails the test instead of hanging it.
    struct timeval timeout = { .tv_sec = 10 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons ((uint16_t) port),
        .sin_addr.s_addr = htonl (INADDR_LOOPBACK)
    };
    char *request = NULL;
    char *answer = NULL;
    int rc = -1;
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
        goto done;
    size_t request_size = strlen (method) + strlen (path) + 128;
    request = malloc (request_size);
    if (!request)
        goto done;
    snprintf (request, request_size, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
              "Connection: close\r\n\r\n", method, path, port);
    if (s_send_all (fd, request, strlen (request)) != 0)
        goto done;
    size_t size;
    answer = s_read_all (fd, &size);
    if (!answer)
        goto done;

    int code;
    char *end_of_head = strstr (answer, "\r\n\r\n");
    if (!end_of_head || sscanf (answer, "HTTP/1.%*d %d", &code) != 1)
        goto done;
    char *payload = end_of_head + 4;
    size_t payload_size = size - (size_t) (payload - answer);
    //  The status line and headers, each line ending "\r\n".
    *(end_of_head + 2) = 0;
    //  A HEAD answer declares the length of a body it does not send.
    bool head = strcmp (method, "HEAD") == 0;
    for (char *line = strstr (answer, "\r\n"); line && line [2]; line = strstr (line + 2, "\r\n"))
        if (!head && strncasecmp (line + 2, "Content-Length:", 15) == 0) {
            size_t declared = strtoul (line + 17, NULL, 10);
            if (declared > payload_size)
                goto done;
            payload_size = declared;
        }
    if (status)
        *status = code;
    if (headers && !(*headers = strdup (answer)))
        goto done;
    if (body) {
        *body = strndup (payload, payload_size);
        if (!*body) {
            if (headers) {
                free (*headers);
                *headers = NULL;
            }
            goto done;
        }
    }
    rc = 0;
done:
    free (request);
    free (answer);
    close (fd);
    return rc;
}

int
fs_test_http_get (int port, const char *path, int *status, char **body)
{
    return fs_test_http_request (port, "GET", path, status, NULL, body);
}
