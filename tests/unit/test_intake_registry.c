/*  test_intake_registry - intake's matching keys: folded names, documents, addresses, dates. */
#include "intake_rules.h"
#include <criterion/criterion.h>

static void
s_key (const char *given, const char *family, char *out)
{
    intake_name_key (given, family, out, 256);
}

Test (intake_registry, fold_case_and_accents)
{
    char out [256];
    intake_fold ("ÀNGELS Ç à è é í ï ò ó ú ü ñ", out, sizeof out);
    cr_assert_str_eq (out, "angels c a e e i i o o u u n");
    intake_fold ("Pau-Martí  O'Neill", out, sizeof out);
    cr_assert_str_eq (out, "pau marti o neill");
    //  l·l (punt volat) and its usual typing l.l are one letter pair
    intake_fold ("Cel·lular Col.legi", out, sizeof out);
    cr_assert_str_eq (out, "cellular collegi");
    //  Typographic apostrophe is a separator; letters we do not fold are kept
    intake_fold ("d’Alòs Жанна", out, sizeof out);
    cr_assert_str_eq (out, "d alos Жанна");
    intake_fold ("", out, sizeof out);
    cr_assert_str_eq (out, "");
    //  A small buffer truncates, never overflows
    char tiny [4];
    intake_fold ("abcdefgh", tiny, sizeof tiny);
    cr_assert_str_eq (tiny, "abc");
}

Test (intake_registry, name_key_ignores_case_accents_particles_order)
{
    char a [256], b [256];
    s_key ("Anna", "Puig i Ferrer", a);
    cr_assert_str_eq (a, "anna ferrer puig");
    s_key ("ANNA", "Ferrer Puig", b);
    cr_assert_str_eq (a, b);
    s_key ("Ànna", "de Puig y Ferrer", b);
    cr_assert_str_eq (a, b);
    //  Given and family names swapped (a form filled the wrong way round)
    s_key ("Puig Ferrer", "Anna", b);
    cr_assert_str_eq (a, b);
    s_key ("Josep", "d'Alòs de la Torre", a);
    s_key ("josep", "Alos Torre", b);
    cr_assert_str_eq (a, b);
    s_key ("Núria", "Ramírez Muñoz", a);
    cr_assert_str_eq (a, "munoz nuria ramirez");
}

Test (intake_registry, name_key_keeps_what_differs)
{
    char a [256], b [256];
    s_key ("Anna", "Puig Ferrer", a);
    s_key ("Ana", "Puig Ferrer", b);
    cr_assert_str_neq (a, b);
    s_key ("Anna", "Puig", b);
    cr_assert_str_neq (a, b);
    //  A name made only of particles keeps them rather than becoming empty
    s_key ("De", "La", a);
    cr_assert_str_eq (a, "de la");
}

Test (intake_registry, documents_normalized_and_checked)
{
    char out [64];
    cr_assert (intake_doc_normalize ("DNI", "12345678Z", out, sizeof out));
    cr_assert_str_eq (out, "12345678Z");
    cr_assert (intake_doc_normalize ("DNI", " 12.345.678-z ", out, sizeof out));
    cr_assert_str_eq (out, "12345678Z");
    //  A wrong check letter is still normalized, but flagged
    cr_assert_not (intake_doc_normalize ("DNI", "12345678A", out, sizeof out));
    cr_assert_str_eq (out, "12345678A");
    cr_assert_not (intake_doc_normalize ("DNI", "1234567Z", out, sizeof out));
    cr_assert_not (intake_doc_normalize ("DNI", "ABCDEFGHZ", out, sizeof out));
    //  NIE: X/Y/Z stand for 0/1/2 in the check
    cr_assert (intake_doc_normalize ("NIE", "X1234567L", out, sizeof out));
    cr_assert (intake_doc_normalize ("NIE", "y-1234567-x", out, sizeof out));
    cr_assert_str_eq (out, "Y1234567X");
    cr_assert (intake_doc_normalize ("NIE", "Z1234567R", out, sizeof out));
    cr_assert_not (intake_doc_normalize ("NIE", "X1234567A", out, sizeof out));
    //  A DNI number given as a NIE (or the reverse) does not pass
    cr_assert_not (intake_doc_normalize ("NIE", "12345678Z", out, sizeof out));
    cr_assert_not (intake_doc_normalize ("DNI", "X1234567L", out, sizeof out));
    cr_assert (intake_doc_normalize ("PASSPORT", "ab 123-456", out, sizeof out));
    cr_assert_str_eq (out, "AB123456");
}

Test (intake_registry, address_key)
{
    char a [512], b [512];
    intake_address_key ("Carrer de la Riera Baixa", "7", "08001", a, sizeof a);
    cr_assert_str_eq (a, "08001|c riera baixa|7");
    intake_address_key ("C/ Riera  Baixa", " 7 ", "08001", b, sizeof b);
    cr_assert_str_eq (a, b);
    intake_address_key ("calle riera baixa", "7", "08001", b, sizeof b);
    cr_assert_str_eq (a, b);
    intake_address_key ("Avinguda Diagonal", "7-B", "08019", a, sizeof a);
    intake_address_key ("Av. Diagonal", "7 b", "08019", b, sizeof b);
    cr_assert_str_eq (a, b);
    //  Another number or postcode is another household
    intake_address_key ("Carrer de la Riera Baixa", "9", "08001", a, sizeof a);
    intake_address_key ("Carrer de la Riera Baixa", "7", "08001", b, sizeof b);
    cr_assert_str_neq (a, b);
    intake_address_key ("Carrer de la Riera Baixa", "7", "08002", a, sizeof a);
    cr_assert_str_neq (a, b);
}

Test (intake_registry, dates)
{
    char out [11];
    cr_assert_eq (intake_date_days ("1970-01-01"), 0);
    cr_assert_eq (intake_date_days ("2024-03-01") - intake_date_days ("2024-02-28"), 2);
    cr_assert_eq (intake_date_days ("2023-03-01") - intake_date_days ("2023-02-28"), 1);
    cr_assert_eq (intake_date_days ("nonsense"), -1);
    intake_date_format (intake_date_days ("2024-12-30") + 2, out);
    cr_assert_str_eq (out, "2025-01-01");
    intake_date_format (intake_date_days ("1999-02-28T10:00:00Z"), out);
    cr_assert_str_eq (out, "1999-02-28");
}
