/*  router_zcode - ICD-10 Z55-Z65 (social determinants) codes to the directory's need
    categories: health speaks diagnoses, social services needs. Unmapped codes are reported,
    never guessed. */
#include "router_rules.h"

router_zcode_result_t
router_zcode_normalize (const char *text, char *out)
{
    assert (out);
    out [0] = 0;
    if (!text)
        return ROUTER_ZCODE_INVALID;
    while (*text == ' ')
        text++;
    size_t len = strlen (text);
    while (len > 0 && text [len - 1] == ' ')
        len--;
    //  Letter, two digits, then an optional dot and 1-2 more characters (ICD-10 has one
    //  subcode digit; national extensions such as ICD-10-CM add one more)
    char code [ROUTER_ZCODE_MAX];
    size_t n = 0;
    if (len < 3 || !isalpha ((unsigned char) text [0]))
        return ROUTER_ZCODE_INVALID;
    code [n++] = (char) toupper ((unsigned char) text [0]);
    if (!isdigit ((unsigned char) text [1]) || !isdigit ((unsigned char) text [2]))
        return ROUTER_ZCODE_INVALID;
    code [n++] = text [1];
    code [n++] = text [2];
    size_t i = 3;
    if (i < len && text [i] == '.')
        i++;
    if (i < len) {
        size_t rest = len - i;
        if (rest > 2)
            return ROUTER_ZCODE_INVALID;
        code [n++] = '.';
        for (; i < len; i++) {
            if (!isalnum ((unsigned char) text [i]))
                return ROUTER_ZCODE_INVALID;
            code [n++] = (char) toupper ((unsigned char) text [i]);
        }
    }
    else
    if (text [len - 1] == '.')
        return ROUTER_ZCODE_INVALID;        //  "Z59." has a dot and no subcode
    code [n] = 0;
    memcpy (out, code, n + 1);
    int block = (code [1] - '0') * 10 + (code [2] - '0');
    if (code [0] != 'Z' || block < 55 || block > 65)
        return ROUTER_ZCODE_OUT_OF_RANGE;
    return ROUTER_ZCODE_MAPPED;
}

static const router_zmap_t *
s_find (const router_zmap_t *map, size_t nmap, const char *code)
{
    for (size_t i = 0; i < nmap; i++)
        if (map [i].code && streq (map [i].code, code))
            return &map [i];
    return NULL;
}

router_zcode_result_t
router_zcode_lookup (const router_zmap_t *map, size_t nmap, const char *code,
                     const router_zmap_t **row, char *normalized)
{
    assert (row);
    *row = NULL;
    char key [ROUTER_ZCODE_MAX];
    router_zcode_result_t rc = router_zcode_normalize (code, key);
    if (normalized)
        strcpy (normalized, key);
    if (rc != ROUTER_ZCODE_MAPPED)
        return rc;
    //  The code, then each shorter parent down to the block: "Z59.01", "Z59.0", "Z59"
    size_t len = strlen (key);
    while (len >= 3) {
        key [len] = 0;
        const router_zmap_t *found = s_find (map, nmap, key);
        if (found) {
            *row = found;
            return found->nneeds > 0 ? ROUTER_ZCODE_MAPPED : ROUTER_ZCODE_UNMAPPED;
        }
        len--;
        if (len == 4)
            len = 3;            //  "Z59." is no code: drop the dot with its digit
    }
    return ROUTER_ZCODE_UNMAPPED;
}

size_t
router_zcode_needs (const router_zmap_t *map, size_t nmap, const char *const *codes,
                    size_t ncodes, const char **needs, size_t max,
                    router_zcode_result_t *results)
{
    assert (needs || max == 0);
    size_t count = 0;
    for (size_t c = 0; c < ncodes; c++) {
        const router_zmap_t *row;
        router_zcode_result_t rc = router_zcode_lookup (map, nmap, codes [c], &row, NULL);
        if (results)
            results [c] = rc;
        if (rc != ROUTER_ZCODE_MAPPED)
            continue;
        for (size_t n = 0; n < row->nneeds; n++) {
            bool seen = false;
            for (size_t i = 0; i < count && !seen; i++)
                seen = streq (needs [i], row->needs [n]);
            if (!seen && count < max)
                needs [count++] = row->needs [n];
        }
    }
    return count;
}
