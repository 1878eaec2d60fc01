/*  router_feed - the durable outbound feed: items appended inside the causing transaction,
    read from the reader's own cursor (proto/FEED.md). */
#include "router.h"

//  Feed names are directory delivery targets: lowercase letters, digits and dashes
bool
router_feed_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > ROUTER_FEED_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower ((unsigned char) name [i]) && !isdigit ((unsigned char) name [i])
        &&  name [i] != '-')
            return false;
    return true;
}

int
router_feed_append (fs_pg_t *pg, const char *feed, const char *item_type,
                    const char *referral_id, const char *correlation_id, const char *payload,
                    size_t len)
{
    assert (pg && feed && item_type && (payload || len == 0));
    if (!router_feed_name_valid (feed) || len == 0 || len > INT_MAX) {
        fs_pg_set_error (pg, "feed append: %s", len == 0 || len > INT_MAX
                         ? "payload empty or too large" : "feed name invalid");
        return -1;
    }
    //  Appends to one feed wait for each other until commit: seq order is then commit
    //  order, so a reader that saw seq N never later finds a committed item below N
    const char *lock [1] = { feed };
    PGresult *result = fs_pg_execp (pg, "router_feed_lock",
                                    "SELECT pg_advisory_xact_lock (hashtext ('finestra.feed.'"
                                    " || $1))", 1, lock, NULL, NULL, 0);
    if (!result)
        return -1;
    PQclear (result);
    char item_id [FS_UUID_LEN + 1];
    fs_uuid (item_id);
    const char *values [7] = { feed, item_id, item_type, referral_id, correlation_id,
                               payload, ROUTER_FEED_CHANNEL };
    int lengths [7] = { 0, 0, 0, 0, 0, (int) len, 0 };
    int formats [7] = { 0, 0, 0, 0, 0, 1, 0 };
    //  The NOTIFY reaches the readers' long polls when this transaction commits
    result = fs_pg_execp (pg, "router_feed_append",
                          "WITH i AS (INSERT INTO referral_router.feed_items (feed, item_id,"
                          " item_type, referral_id, correlation_id, payload) VALUES ($1,"
                          " $2::uuid, $3, $4::uuid, $5::uuid, $6) RETURNING seq)"
                          " SELECT seq, pg_notify ($7, $1) FROM i",
                          7, values, lengths, formats, 0);
    if (!result)
        return -1;
    PQclear (result);
    return 0;
}
