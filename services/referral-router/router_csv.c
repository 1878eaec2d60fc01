/*  router_csv - splits one CSV line (RFC 4180 quoting) in place, saying which field is bad. */
#include "router_rules.h"

int
router_csv_split (char *line, char **fields, int max, int *column)
{
    assert (line && fields && column);
    int n = 0;
    char *in = line, *out = line;
    *column = 0;
    while (n < max) {
        fields [n++] = out;
        *column = n;
        if (*in == '"') {
            in++;
            bool closed = false;
            while (*in) {
                if (*in == '"' && in [1] == '"') { *out++ = '"'; in += 2; }
                else if (*in == '"') { in++; closed = true; break; }
                else *out++ = *in++;
            }
            if (!closed)
                return -1;      //  the line ended inside quotes
        }
        else
            while (*in && *in != ',')
                *out++ = *in++;
        if (*in == ',') { in++; *out++ = 0; continue; }
        if (*in == 0) { *out = 0; *column = 0; return n; }
        return -1;              //  text after a closing quote
    }
    *column = max + 1;          //  more fields than expected
    return -1;
}
