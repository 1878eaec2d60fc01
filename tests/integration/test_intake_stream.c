/*  test_intake_stream - kill -9 of intake at random moments while retrying publishers stream
    a mix of catalogue events: every event is stored once (the receipts' refs agree with
    PostgreSQL), processed once, opens at most one case, and each case is announced once. */
#include "fs_test.h"
#include <signal.h>

#define S_EVENTS      2000          /* events in the stream */
#define S_PUBLISHERS  4             /* concurrent retrying publishers */
#define S_PERSONS     240           /* people the events are about */
#define S_TWINS       8             /* the last S_TWINS people share names and birth date
                                       with the first S_TWINS, under other documents */
#define S_KILLS       5             /* kill -9 of intake, each followed by a restart */
#define S_RESEND_GAP  40            /* a publisher re-sends its event of 40 sends ago ... */
#define S_RESEND_EVERY 8            /* ... every 8th one: expects `duplicate`, same ref */
#define S_TIMEOUT_MS  1000          /* receipt timeout before the same bytes go again */
#define S_SETTLE_MS   60000         /* an event not settled in this long fails the test */

//  What each catalogue type does in processing (the contract of the processor)
typedef struct {
    const char *type;               /* catalogue type */
    const char *source;             /* who publishes it */
    bool opens_case;                /* processing opens one case */
    bool refers;                    /* and asks the router for a referral */
} s_kind_t;

//  Event n is of kind s_mix [n % 10]: 7 in 10 open a case, 4 of those refer
static const s_kind_t s_mix [10] = {
    { "attention.requested",            "citizen-office",     true,  false },
    { "attention.requested",            "e-office",           true,  false },
    { "health.social_risk_detected",    "primary-care",       true,  true  },
    { "health.social_risk_detected",    "hospital-clinic",    true,  true  },
    { "housing.eviction_scheduled",     "housing-office",     true,  true  },
    { "emergency.intervention",         "cuesb",              true,  true  },
    { "benefits.application_submitted", "e-office",           true,  false },
    { "register.address_changed",       "municipal-register", false, false },
    { "consent.granted",                "primary-care",       false, false },
    { "consent.revoked",                "primary-care",       false, false },
};

//  One event of the stream and what the publishers saw for it
typedef struct {
    zchunk_t *bytes;                /* the encoded event, re-sent as is */
    char id [32];                   /* its id */
    int person;                     /* whom it is about */
    int accepted;                   /* receipts `accepted` */
    int duplicate;                  /* receipts `duplicate` */
    int resent;                     /* deliberate re-sends after it was settled */
    int refs_differ;                /* receipts whose ref differed from the first */
    char ref [FS_UUID_LEN + 1];     /* the first receipt's ref */
} s_event_t;

//  A publisher's share: events n with (n / 10) % S_PUBLISHERS == index, so a consent and
//  its revocation (n % 10 == 8, 9) go in order from one publisher
typedef struct {
    const char *endpoint;           /* intake's ingest endpoint */
    s_event_t *events;              /* all events; this publisher writes only its own */
    int index;                      /* which publisher */
    int timeouts;                   /* out: attempts without a receipt */
    int unavailable;                /* out: `unavailable` receipts */
    char error [256];               /* out: why it stopped, "" when all settled */
} s_publisher_t;

// -- the people and their events -------------------------------------------------------

static const char *s_given [] = { "Anna", "Jordi", "Fatima", "Pau", "Laia", "Mohamed", "Núria",
                                  "Carlos", "Mei", "Oriol", "Lucía", "Ibrahim" };
static const char *s_family [] = { "Puig i Ferrer", "García López", "El Amrani", "Vidal Roca",
                                   "Sánchez de la Torre", "Chen", "Martí Soler", "Diallo",
                                   "Fernández Ruiz", "Ortega i Pons", "Khan", "Rovira",
                                   "Castells Mas", "Pérez", "Bosch" };
static const char *s_streets [] = { "Carrer de Sant Pau", "Carrer de la Riera Baixa",
                                    "Passeig de Sant Joan", "Carrer de Mallorca" };
//  08001-08003 are in the test's territory; 08004 is not: its cases are unplaced
static const char *s_postcodes [] = { "08001", "08002", "08003", "08004" };

typedef struct {
    char doc_type [8];
    char doc_number [24];
    const char *given, *family;
    char birth [11];
    const char *street;
    char number [8];
    const char *postcode;
} s_person_t;

static void
s_person (int p, s_person_t *out)
{
    //  Twins: the names and birth date of person p - (S_PERSONS - S_TWINS), another document
    int look = p >= S_PERSONS - S_TWINS ? p - (S_PERSONS - S_TWINS) : p;
    long number = 20000000 + (long) p * 7919;
    if (p % 7 == 3) {
        //  NIE: X + 7 digits + the letter of the digits
        number %= 10000000;
        snprintf (out->doc_type, sizeof out->doc_type, "NIE");
        snprintf (out->doc_number, sizeof out->doc_number, "X%07ld%c", number,
                  "TRWAGMYFPDXBNJZSQVHLCKE" [number % 23]);
    }
    else {
        snprintf (out->doc_type, sizeof out->doc_type, "DNI");
        snprintf (out->doc_number, sizeof out->doc_number, "%08ld%c", number,
                  "TRWAGMYFPDXBNJZSQVHLCKE" [number % 23]);
    }
    out->given = s_given [look % 12];
    out->family = s_family [(look / 12) % 15];
    //  A distinct birth date per look, so only twins share names and birth date
    time_t birth = (time_t) (-946771200L + (long) look * 37 * 86400);    //  from 1940-01-01
    struct tm tm;
    gmtime_r (&birth, &tm);
    strftime (out->birth, sizeof out->birth, "%Y-%m-%d", &tm);
    out->street = s_streets [p % 4];
    snprintf (out->number, sizeof out->number, "%d", 1 + p % 90);
    out->postcode = s_postcodes [p % 4];
}

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

static void
s_address (msgpack_packer *pk, const char *street, const char *number, const char *postcode)
{
    msgpack_pack_map (pk, 3);
    s_str (pk, "street");   s_str (pk, street);
    s_str (pk, "number");   s_str (pk, number);
    s_str (pk, "postcode"); s_str (pk, postcode);
}

//  Whom event n is about: spread over everybody; a revocation is about the consent's person
static int
s_person_of (int n)
{
    if (n % 10 == 9)
        n--;
    return (int) (((long) n * 7919 + n / 10) % S_PERSONS);
}

//  YYYY-MM-DD of today + days
static void
s_date_in (int days, char *out)
{
    time_t when = time (NULL) + (time_t) days * 86400;
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (out, 11, "%Y-%m-%d", &tm);
}

static zchunk_t *
s_encode (int n, const char *id, int p)
{
    const s_kind_t *kind = &s_mix [n % 10];
    s_person_t person;
    s_person (p, &person);
    char now [32], date [11], ref [48];
    fs_rfc3339 (fs_now_ms (), now);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");           msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");          s_str (&pk, id);
    s_str (&pk, "source");      s_str (&pk, kind->source);
    s_str (&pk, "type");        s_str (&pk, kind->type);
    s_str (&pk, "occurred_at"); s_str (&pk, now);
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "doc_type");    s_str (&pk, person.doc_type);
    s_str (&pk, "doc_number");  s_str (&pk, person.doc_number);
    s_str (&pk, "given_name");  s_str (&pk, person.given);
    s_str (&pk, "family_name"); s_str (&pk, person.family);
    s_str (&pk, "birth_date");  s_str (&pk, person.birth);
    s_str (&pk, "address");
    s_address (&pk, person.street, person.number, person.postcode);
    s_str (&pk, "data");
    switch (n % 10) {
        case 0:
        case 1:
            msgpack_pack_map (&pk, 2);
            s_str (&pk, "channel"); s_str (&pk, n % 10 ? "online" : "in_person");
            s_str (&pk, "reason");  s_str (&pk, "Cannot pay the rent this month");
            break;
        case 2:
        case 3:
            msgpack_pack_map (&pk, 3);
            s_str (&pk, "icd10_codes"); msgpack_pack_array (&pk, 2);
            s_str (&pk, "Z59.0"); s_str (&pk, "Z60.2");
            s_str (&pk, "suggested_level"); s_str (&pk, "complementation");
            s_str (&pk, "urgency");
            s_str (&pk, n % 30 < 10 ? "urgent" : n % 30 < 20 ? "preferent" : "ordinary");
            break;
        case 4:
            //  Evictions from 5 to 124 days away: each eviction rule gets its share
            s_date_in (5 + (n / 10) % 120, date);
            msgpack_pack_map (&pk, 3);
            s_str (&pk, "eviction_date");  s_str (&pk, date);
            s_str (&pk, "household_size"); msgpack_pack_int (&pk, 1 + n % 4);
            s_str (&pk, "minors");         msgpack_pack_int (&pk, (n / 10) % 3 == 0);
            break;
        case 5:
            msgpack_pack_map (&pk, 4);
            s_str (&pk, "kind");            s_str (&pk, "emergency_accommodation");
            s_str (&pk, "at");              s_str (&pk, now);
            s_str (&pk, "minors_involved"); msgpack_pack_int (&pk, (n / 10) % 2);
            s_str (&pk, "urgency");         s_str (&pk, "preferent");
            break;
        case 6:
            snprintf (ref, sizeof ref, "APP-%s", id);
            msgpack_pack_map (&pk, 4);
            s_str (&pk, "programme");       s_str (&pk, "inclusion_income");
            s_str (&pk, "application_ref"); s_str (&pk, ref);
            s_str (&pk, "submitted_at");    s_str (&pk, now);
            s_str (&pk, "channel");         s_str (&pk, "online");
            break;
        case 7:
            msgpack_pack_map (&pk, 2);
            s_str (&pk, "new_address");
            s_address (&pk, person.street, person.number, person.postcode);
            s_str (&pk, "effective_date"); s_date_in (0, date); s_str (&pk, date);
            break;
        case 8:
        case 9:
            //  The consent of event n - n % 10 + 8, granted then (n % 10 == 9) revoked
            snprintf (ref, sizeof ref, "CONSENT-%d", n - n % 10 + 8);
            if (n % 10 == 8) {
                msgpack_pack_map (&pk, 5);
                s_str (&pk, "consent_ref");     s_str (&pk, ref);
                s_str (&pk, "purpose");         s_str (&pk, "social_health_coordination");
                s_str (&pk, "data_categories"); msgpack_pack_array (&pk, 2);
                s_str (&pk, "identity"); s_str (&pk, "social_health");
                s_str (&pk, "recipients");      msgpack_pack_array (&pk, 1);
                s_str (&pk, "social_services");
                s_str (&pk, "given_at");        s_str (&pk, now);
            }
            else {
                msgpack_pack_map (&pk, 2);
                s_str (&pk, "consent_ref"); s_str (&pk, ref);
                s_str (&pk, "revoked_at");  s_str (&pk, now);
            }
            break;
    }
    zchunk_t *chunk = zchunk_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return chunk;
}

// -- the retrying publisher ------------------------------------------------------------

//  Sends event until a receipt settles it: the SAME bytes on a fresh REQ after a timeout,
//  back-off on `unavailable`. 0, or -1 with self->error set
static int
s_send (s_publisher_t *self, s_event_t *event, bool resend)
{
    int backoff_ms = 50;
    int64_t deadline = fs_now_ms () + S_SETTLE_MS;
    while (fs_now_ms () < deadline) {
        zsock_t *req = zsock_new (ZMQ_REQ);
        assert (req);
        zsock_set_linger (req, 0);
        fs_ingest_receipt_t receipt = { 0 };
        bool answered = false;
        if (zsock_connect (req, "%s", self->endpoint) == 0) {
            zframe_t *frame = zframe_new (zchunk_data (event->bytes), zchunk_size (event->bytes));
            zpoller_t *poller = zpoller_new (req, NULL);
            if (zframe_send (&frame, req, ZFRAME_DONTWAIT) == 0
            &&  zpoller_wait (poller, S_TIMEOUT_MS) == req) {
                zframe_t *answer = zframe_recv (req);
                fs_proto_error_t err;
                answered = answer
                        && fs_proto_decode (&fs_ingest_receipt_type, zframe_data (answer),
                                            zframe_size (answer), &receipt, &err) == 0;
                zframe_destroy (&answer);
            }
            zframe_destroy (&frame);
            zpoller_destroy (&poller);
        }
        zsock_destroy (&req);
        if (!answered) {
            self->timeouts++;
            continue;
        }
        int rc = 1;                 //  1: not settled yet
        if (FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
        &&  streq (receipt.error.code, "unavailable")) {
            self->unavailable++;
            zclock_sleep (backoff_ms);
            backoff_ms = backoff_ms < 800 ? backoff_ms * 2 : 1000;
        }
        else
        if (!receipt.id || !streq (receipt.id, event->id)) {
            snprintf (self->error, sizeof self->error, "%s: receipt for %s", event->id,
                      receipt.id ? receipt.id : "(no id)");
            rc = -1;
        }
        else
        if ((streq (receipt.status, "accepted") || streq (receipt.status, "duplicate"))
        &&  receipt.ref && strlen (receipt.ref) == FS_UUID_LEN) {
            if (streq (receipt.status, "accepted"))
                event->accepted++;
            else
                event->duplicate++;
            if (!event->ref [0])
                snprintf (event->ref, sizeof event->ref, "%s", receipt.ref);
            else
            if (!streq (event->ref, receipt.ref))
                event->refs_differ++;
            event->resent += resend;
            rc = 0;
        }
        else {
            snprintf (self->error, sizeof self->error, "%s: %s %s: %s", event->id,
                      receipt.status,
                      FS_PRESENT (&receipt, fs_ingest_receipt_F_error) ? receipt.error.code : "",
                      FS_PRESENT (&receipt, fs_ingest_receipt_F_error) ? receipt.error.message
                                                                       : "no ref");
            rc = -1;
        }
        fs_proto_clear (&fs_ingest_receipt_type, &receipt);
        if (rc <= 0)
            return rc;
    }
    snprintf (self->error, sizeof self->error, "%s: not settled in %d s", event->id,
              S_SETTLE_MS / 1000);
    return -1;
}

//  The actor: publishes its share, says "done", waits for $TERM
static void
s_publisher_actor (zsock_t *pipe, void *args)
{
    s_publisher_t *self = (s_publisher_t *) args;
    zsock_signal (pipe, 0);
    int sent = 0;
    int mine [S_EVENTS];
    for (int n = 0; n < S_EVENTS && !self->error [0]; n++) {
        if ((n / 10) % S_PUBLISHERS != self->index)
            continue;
        mine [sent++] = n;
        if (s_send (self, &self->events [n], false))
            break;
        //  Now and then the receipt "was lost": the same event again, long after
        if (sent > S_RESEND_GAP && (sent - S_RESEND_GAP) % S_RESEND_EVERY == 0)
            s_send (self, &self->events [mine [sent - 1 - S_RESEND_GAP]], true);
    }
    zstr_send (pipe, "done");
    char *command = zstr_recv (pipe);
    zstr_free (&command);
}

// -- checks in PostgreSQL ----------------------------------------------------------------

static long
s_count (fs_test_suite_t *suite, const char *sql)
{
    return fs_test_pg_long (suite->pg_url, sql);
}

//  A small territory: 08001-08003 placed at two centres, the rest unplaced
static void
s_load_territory (fs_test_suite_t *suite)
{
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    PGresult *result = PQexec (conn,
        "BEGIN;"
        "INSERT INTO intake.districts VALUES ('01', 'Ciutat Vella'), ('02', 'Eixample');"
        "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'el Raval'),"
        " ('02', '01', 'el Barri Gotic'), ('06', '02', 'la Sagrada Familia');"
        "INSERT INTO intake.centres VALUES ('CSS01', 'CSS Raval (test)', '01', true),"
        " ('CSS06', 'CSS Sagrada Familia (test)', '02', true);"
        "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS01'), ('02', 'CSS01'),"
        " ('06', 'CSS06');"
        "INSERT INTO intake.postcodes VALUES ('08001', '01', true), ('08002', '02', true),"
        " ('08003', '06', true);"
        "COMMIT");
    cr_assert (PQresultStatus (result) == PGRES_COMMAND_OK, "territory: %s",
               PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
}

//  Every (source, id) published has one row whose ref is the one every receipt carried
static void
s_assert_refs (fs_test_suite_t *suite, s_event_t *events)
{
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    PGresult *result = PQexec (conn,
        "SELECT external_id, ref::text, count(*) OVER (PARTITION BY source, external_id)"
        " FROM intake.events");
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    cr_assert_eq (PQntuples (result), S_EVENTS, "%d events stored, %d published",
                  PQntuples (result), S_EVENTS);
    char **stored = (char **) calloc (S_EVENTS, sizeof *stored);
    cr_assert (stored);
    for (int row = 0; row < PQntuples (result); row++) {
        const char *id = PQgetvalue (result, row, 0);
        int n = atoi (id + 2);                  //  "e-<n>"
        cr_assert (strncmp (id, "e-", 2) == 0 && n >= 0 && n < S_EVENTS, "stray event %s", id);
        cr_assert_eq (atol (PQgetvalue (result, row, 2)), 1, "%s stored more than once", id);
        stored [n] = PQgetvalue (result, row, 1);
    }
    for (int n = 0; n < S_EVENTS; n++) {
        s_event_t *event = &events [n];
        cr_assert (stored [n], "%s was never stored", event->id);
        cr_assert (event->ref [0], "%s got no receipt", event->id);
        cr_assert_str_eq (event->ref, stored [n], "%s: receipt ref %s, stored ref %s",
                          event->id, event->ref, stored [n]);
        cr_assert_eq (event->refs_differ, 0, "%s: receipts with different refs", event->id);
        cr_assert_leq (event->accepted, 1, "%s accepted %d times", event->id, event->accepted);
    }
    free (stored);
    PQclear (result);
    PQfinish (conn);
}

Test (intake_stream, kill_9_during_a_retrying_stream, .timeout = 300)
{
    //  A seed to replay a failure: FINESTRA_TEST_SEED=<the seed printed>
    const char *seed_text = getenv ("FINESTRA_TEST_SEED");
    unsigned seed = seed_text ? (unsigned) strtoul (seed_text, NULL, 10)
                              : (unsigned) (time (NULL) ^ (getpid () << 8));
    fprintf (stderr, "test_intake_stream: seed %u (FINESTRA_TEST_SEED=%u replays the kills)\n",
             seed, seed);
    srand (seed);

    fs_test_suite_t *suite = fs_test_suite_new ("stream");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS", "on");
    //  Small batches: more transactions for a kill to land in, workers overlapping more
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_BATCH", "50");
    //  No consumer runs: re-sends put off, so the relay does not compete for the database
    fs_test_suite_setenv (suite, "FINESTRA_RELAY_RETRY_MS", "3600000");
    fs_test_suite_setenv (suite, "FINESTRA_LOG_LEVEL", "info");
    //  First start migrates; the territory goes in before the stream
    fs_test_suite_start (suite, "intake");
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 10000), 0);
    s_load_territory (suite);
    fs_test_suite_start (suite, "intake");

    s_event_t *events = (s_event_t *) calloc (S_EVENTS, sizeof *events);
    cr_assert (events);
    long opening = 0, referring = 0, granted = 0;
    bool used [S_PERSONS] = { false };
    for (int n = 0; n < S_EVENTS; n++) {
        snprintf (events [n].id, sizeof events [n].id, "e-%d", n);
        events [n].person = s_person_of (n);
        events [n].bytes = s_encode (n, events [n].id, events [n].person);
        used [events [n].person] = true;
        opening += s_mix [n % 10].opens_case;
        referring += s_mix [n % 10].refers;
        granted += n % 10 == 8;
    }
    long people = 0, twins = 0;
    for (int p = 0; p < S_PERSONS; p++) {
        people += used [p];
        twins += p >= S_PERSONS - S_TWINS && used [p] && used [p - (S_PERSONS - S_TWINS)];
    }

    s_publisher_t publishers [S_PUBLISHERS];
    zactor_t *actors [S_PUBLISHERS];
    zpoller_t *poller = zpoller_new (NULL);
    for (int i = 0; i < S_PUBLISHERS; i++) {
        publishers [i] = (s_publisher_t) { .endpoint = suite->ingest_endpoint,
                                           .events = events, .index = i };
        actors [i] = zactor_new (s_publisher_actor, &publishers [i]);
        cr_assert (actors [i]);
        zpoller_add (poller, actors [i]);
    }
    //  Kill -9 every 150-600 ms while the stream runs, restart at once
    int kills = 0, kills_in_stream = 0, in_transaction = 0, running = S_PUBLISHERS;
    while (kills < S_KILLS || running > 0) {
        int delay = 150 + rand () % 451;
        zsock_t *which = NULL;
        if (running)
            which = (zsock_t *) zpoller_wait (poller, delay);
        else
            zclock_sleep (delay);       //  the last kills fall on processing alone
        if (which) {
            char *done = zstr_recv (which);
            zstr_free (&done);
            running--;
            continue;
        }
        cr_assert (!running || !zpoller_terminated (poller));
        if (kills < S_KILLS) {
            //  Whether intake had a transaction open just now (storing or processing)
            in_transaction += fs_test_pg_long (suite->pg_url,
                "SELECT (count(*) > 0)::int FROM pg_stat_activity WHERE datname ="
                " current_database () AND xact_start IS NOT NULL AND pid <> pg_backend_pid ()")
                == 1;
            cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGKILL, 5000), 128 + SIGKILL);
            kills++;
            kills_in_stream += running > 0;
            fs_test_suite_start (suite, "intake");
        }
    }
    zpoller_destroy (&poller);
    int timeouts = 0, unavailable = 0;
    for (int i = 0; i < S_PUBLISHERS; i++) {
        zactor_destroy (&actors [i]);
        cr_assert (!publishers [i].error [0], "publisher %d: %s", i, publishers [i].error);
        timeouts += publishers [i].timeouts;
        unavailable += publishers [i].unavailable;
    }
    long resent = 0, duplicates = 0;
    for (int n = 0; n < S_EVENTS; n++) {
        resent += events [n].resent;
        duplicates += events [n].duplicate;
    }
    //  A duplicate that was no deliberate re-send: stored, then the receipt was lost to a kill
    fprintf (stderr, "test_intake_stream: %d kills (%d during the stream, %d with a"
             " transaction of intake open a moment before), %d timeouts, %d unavailable,"
             " %ld duplicate receipts: %ld deliberate re-sends, %ld after a receipt lost to"
             " a kill\n", kills, kills_in_stream, in_transaction, timeouts, unavailable,
             duplicates, resent, duplicates - resent);
    cr_assert_geq (kills_in_stream, 1, "the stream ended before any kill");
    cr_assert_geq (resent, 1);

    //  Stored exactly once, under the refs the receipts gave
    s_assert_refs (suite, events);
    //  Processed, every one (bounded wait: processing may still be catching up)
    const char *pending = "SELECT count(*) FROM intake.events WHERE processed_at IS NULL";
    cr_assert (fs_test_pg_wait (suite->pg_url, pending, 0, 60000),
               "%ld events still unprocessed after 60 s (log in %s)", s_count (suite, pending),
               suite->log_dir);
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.events WHERE process_error IS NOT NULL"), 0,
        "events the processor could not apply (log in %s)", suite->log_dir);

    //  One case per case-opening event, none for the others
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.cases"), opening);
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.cases c JOIN intake.events e ON e.ref = c.event_ref"
        " WHERE e.type IN ('register.address_changed', 'consent.granted', 'consent.revoked')"),
        0, "a case opened by an event that opens none");
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.cases c JOIN intake.events e ON e.ref = c.event_ref"
        " WHERE c.event_type <> e.type"), 0);
    //  Each case announced once per consumer, each referral asked once per consumer
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM (SELECT 1 FROM intake.outbox WHERE type = 'intake.case_opened'"
        " GROUP BY correlation_id, consumer HAVING count(*) > 1) t"), 0,
        "a case announced twice to one consumer");
    cr_assert_eq (s_count (suite,
        "SELECT count(DISTINCT correlation_id) FROM intake.outbox"
        " WHERE type = 'intake.case_opened'"), opening);
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.cases c WHERE NOT EXISTS (SELECT 1 FROM intake.outbox o"
        " WHERE o.type = 'intake.case_opened' AND o.correlation_id = c.event_ref)"), 0,
        "a case never announced");
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM (SELECT 1 FROM intake.outbox"
        " WHERE type = 'intake.referral_requested'"
        " GROUP BY correlation_id, consumer HAVING count(*) > 1) t"), 0,
        "a referral asked twice of one consumer");
    cr_assert_eq (s_count (suite,
        "SELECT count(DISTINCT correlation_id) FROM intake.outbox"
        " WHERE type = 'intake.referral_requested'"), referring);

    //  No event caused any internal event twice (a batch applied twice would)
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM (SELECT 1 FROM intake.outbox"
        " GROUP BY type, correlation_id, consumer HAVING count(*) > 1) t"), 0,
        "an internal event emitted twice for one event");
    //  Every consent change announced: granted and withdrawn, once each
    cr_assert_eq (s_count (suite,
        "SELECT count(DISTINCT correlation_id) FROM intake.outbox"
        " WHERE type = 'intake.consent_changed'"), 2 * granted);

    //  One person per document, as many as the stream named; twins only as candidates
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.person_documents"), people);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.persons"), people);
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.persons WHERE merged_into IS NOT NULL"), 0,
        "a person merged without review");
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.match_candidates"), twins,
                  "expected one candidate per pair of twins seen (%ld)", twins);
    //  One consent record per consent.granted; each revocation withdrew its own
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.consents"), granted);
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.consents WHERE withdrawn_at IS NULL"), 0);
    //  Placed where the territory says, the rest visibly unplaced
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM intake.cases WHERE centre_code IS NULL"),
                  s_count (suite, "SELECT count(*) FROM intake.unplaced"));
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM intake.cases WHERE centre_code IS NOT NULL"
        " AND centre_code NOT IN ('CSS01', 'CSS06')"), 0);
    cr_assert_gt (s_count (suite, "SELECT count(*) FROM intake.unplaced"), 0);
    cr_assert_gt (s_count (suite, "SELECT count(*) FROM intake.cases WHERE centre_code = 'CSS06'"),
                  0);
    //  A person has one current household
    cr_assert_eq (s_count (suite,
        "SELECT count(*) FROM (SELECT person_id FROM intake.household_members"
        " WHERE until IS NULL GROUP BY person_id HAVING count(*) > 1) t"), 0);

    for (int n = 0; n < S_EVENTS; n++)
        zchunk_destroy (&events [n].bytes);
    free (events);
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 10000), 0);
    fs_test_suite_destroy (&suite);
}
