-- Novo export value rules, each owned ONCE here (shared/spec/novo-export-format.md, "CSV conventions").
-- Every staging model types its columns through these macros; flitstack_dagster.staging.runner
-- loads this file (statements separated by lines ending in ';') before running a model.
--
-- Naming: novo_<type>(raw, ...)        -> the typed value, NULL when absent, unparseable or unusable
--         novo_<type>_issue(raw, ...)  -> NULL when the value is fine or absent, else a reason code
--         novo_issue(column, raw, code, message) -> one value-level quarantine notice (or NULL)
-- Parameters: ord = the manifest's date_order ('MDY' | 'DMY'); tz = the manifest's IANA timezone;
--             exported_at = the manifest's exported_at as TIMESTAMPTZ (upper bound of plausible dates).

-- ---------------------------------------------------------------------------------------------
-- null markers: empty, N/A, n/a, NULL, - (after trimming spaces, tabs, line breaks, NBSP)
-- Fast path: most values have no padding, and trim() with a character set is slow. `novo_padded`
-- looks only at the first and last character (code points 9, 10, 12, 13, 32, 160: what the regex
-- `^[\s\x{00A0}]|[\s\x{00A0}]$` matched); CASE, not AND/OR, so trim() runs only on padded values.
-- The trimmed set is space, tab, LF, VT, FF, CR and NBSP (E'...': one constant, not a chr() chain,
-- because every macro call copies its expression and big expansions cost 0.3–1 s to bind per model).
CREATE OR REPLACE MACRO novo_padded(v) AS
    (unicode(v) IN (9, 10, 12, 13, 32, 160) OR unicode(v[-1]) IN (9, 10, 12, 13, 32, 160));

CREATE OR REPLACE MACRO novo_trim(v) AS
    CASE WHEN novo_padded(v)
         THEN trim(v, E' \t\n\x0b\f\r\xc2\xa0') ELSE v END;

CREATE OR REPLACE MACRO novo_is_null(v) AS
    CASE WHEN v IS NULL THEN true
         WHEN novo_padded(v)
         THEN trim(v, E' \t\n\x0b\f\r\xc2\xa0') IN ('', 'N/A', 'n/a', 'NULL', '-')
         ELSE v IN ('', 'N/A', 'n/a', 'NULL', '-') END;

-- text / long text / time: kept exactly as written (inner content and padding) unless a null marker
-- A byte-order mark pasted at the start of a value (U+FEFF, or its UTF-8 bytes read as Windows-1252,
-- 'ï»¿') is dropped: it is invisible in Novo and would only break matching in Pipedrive.
CREATE OR REPLACE MACRO novo_unbom(v) AS
    CASE WHEN starts_with(v, chr(65279)) THEN substr(v, 2)
         WHEN starts_with(v, 'ï»¿') THEN substr(v, 4) ELSE v END;

CREATE OR REPLACE MACRO novo_text(v) AS CASE WHEN novo_is_null(v) THEN NULL ELSE novo_unbom(v) END;

-- ids: strings (leading zeros kept), trimmed so that a padded reference still finds its record
CREATE OR REPLACE MACRO novo_id(v) AS CASE WHEN novo_is_null(v) THEN NULL ELSE novo_trim(v) END;

-- names: trim, collapse inner whitespace; ALL-CAPS or all-lower -> Title Case (letter after a
-- non-letter is upper: O'NEIL -> O'Neil, mary-jane -> Mary-Jane); mixed case is kept.
CREATE OR REPLACE MACRO novo_title_case(s) AS
    array_to_string(list_transform(range(1, length(s) + 1), lambda i:
        CASE WHEN i = 1 OR NOT regexp_matches(substring(s, i - 1, 1), '^\p{L}')
             THEN upper(substring(s, i, 1)) ELSE lower(substring(s, i, 1)) END), '');

CREATE OR REPLACE MACRO novo_name_clean(s) AS
    CASE WHEN s = upper(s) OR s = lower(s) THEN novo_title_case(s) ELSE s END;

CREATE OR REPLACE MACRO novo_name(v) AS
    CASE WHEN novo_is_null(v) THEN NULL
         ELSE novo_name_clean(regexp_replace(novo_trim(novo_unbom(v)), '\s+', ' ', 'g')) END;

-- ---------------------------------------------------------------------------------------------
-- wall-clock parsing (no offset): returns TIMESTAMP or NULL. Slash dates follow date_order;
-- a 4-digit year is required; impossible dates (02/30/2026) and hours (25:00, 13 PM) -> NULL.
-- (Macros substitute their arguments as text: a one-element list_transform binds an expensive
--  value once, `list_transform([expr], lambda x: ... x ... x ...)[1]`. Parsing is the costly part.)
-- Slash dates are first rewritten to Y-M-D per ord (MDY / DMY), `T` and repeated spaces to one
-- space, `2:15PM` to `2:15 PM`; then the one format the value's shape allows is picked by cheap
-- string tests (a failing strptime attempt is costly). Each regexp_replace runs only when a cheap
-- test shows it can change the value (a `/`; a `T` or two spaces; a last letter m/M): s is trimmed
-- and only the leading date is rewritten, so those tests give the same answer before and after.
CREATE OR REPLACE MACRO novo_wall_slash(s, ord) AS
    CASE WHEN NOT contains(s, '/') THEN s
         WHEN NOT regexp_matches(s, '^\d{1,2}/\d{1,2}/\d{4}( |$)') THEN s
         WHEN ord = 'DMY' THEN regexp_replace(s, '^(\d{1,2})/(\d{1,2})/(\d{4})', '\3-\2-\1')
         ELSE regexp_replace(s, '^(\d{1,2})/(\d{1,2})/(\d{4})', '\3-\1-\2') END;

CREATE OR REPLACE MACRO novo_wall_norm(s, ord) AS
    CASE WHEN NOT (contains(s, 'T') OR contains(s, '  ') OR ends_with(s, 'm') OR ends_with(s, 'M'))
         THEN novo_wall_slash(s, ord)
         ELSE regexp_replace(regexp_replace(novo_wall_slash(s, ord),
              '^(\d{4}-\d{1,2}-\d{1,2})(T| +)', '\1 '), '(\d) *([AaPp][Mm])$', '\1 \2') END;

-- Most values are plain: a slash or ISO date, then nothing, or H:MM or H:MM:SS after one space (or
-- the ISO `T`), without padding. Such a value is read as written by the one format its shape names:
-- no trim, rewrite or lambda (a lambda around a parse costs as much as the parse). Every other value
-- is trimmed and takes the normalizing path (novo_wall_norm).
CREATE OR REPLACE MACRO novo_colons(s) AS strlen(s) - strlen(replace(s, ':', ''));

CREATE OR REPLACE MACRO novo_wall_plain(s, ord) AS
    CASE WHEN contains(s, '/') AND ord = 'DMY' THEN
             CASE novo_colons(s) WHEN 0 THEN try_strptime(s, '%d/%m/%Y') WHEN 1 THEN try_strptime(s, '%d/%m/%Y %H:%M')
                  ELSE try_strptime(s, '%d/%m/%Y %H:%M:%S') END
         WHEN contains(s, '/') THEN
             CASE novo_colons(s) WHEN 0 THEN try_strptime(s, '%m/%d/%Y') WHEN 1 THEN try_strptime(s, '%m/%d/%Y %H:%M')
                  ELSE try_strptime(s, '%m/%d/%Y %H:%M:%S') END
         WHEN contains(s, 'T') THEN
             CASE novo_colons(s) WHEN 1 THEN try_strptime(s, '%Y-%m-%dT%H:%M') ELSE try_strptime(s, '%Y-%m-%dT%H:%M:%S') END
         ELSE CASE novo_colons(s) WHEN 0 THEN try_strptime(s, '%Y-%m-%d') WHEN 1 THEN try_strptime(s, '%Y-%m-%d %H:%M')
                   ELSE try_strptime(s, '%Y-%m-%d %H:%M:%S') END END;

-- On the normalizing path the shapes (date; + H:MM; + H:MM:SS; + H:MM AM; + H:MM:SS AM;
-- + H:MM:SS.ffffff) are told apart by a space, a `.`, a last letter m/M and the number of `:` once
-- the value matched one of them.
-- (The trimmed value is bound once too: the normalizing CASEs repeat it, and a big expansion costs
--  more binding time per model than the extra binding per value.)
CREATE OR REPLACE MACRO novo_wall_ts(v, ord) AS CASE
    WHEN regexp_matches(v, '^(\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2}(:\d{2})?)?|\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?)$')
    THEN novo_wall_plain(v, ord)
    ELSE list_transform([novo_trim(v)], lambda _nv_s: list_transform([novo_wall_norm(_nv_s, ord)], lambda _nv_ws: CASE
    WHEN NOT regexp_matches(_nv_ws, '^\d{4}-\d{1,2}-\d{1,2}( \d{1,2}:\d{2}((:\d{2})?( [AaPp][Mm])?|:\d{2}\.\d{1,6}))?$') THEN NULL
    WHEN NOT contains(_nv_ws, ' ') THEN try_strptime(_nv_ws, '%Y-%m-%d')
    WHEN contains(_nv_ws, '.') THEN try_strptime(_nv_ws, '%Y-%m-%d %H:%M:%S.%f')
    WHEN ends_with(_nv_ws, 'm') OR ends_with(_nv_ws, 'M') THEN
         CASE WHEN novo_colons(_nv_ws) = 2
              THEN try_strptime(_nv_ws, '%Y-%m-%d %I:%M:%S %p') ELSE try_strptime(_nv_ws, '%Y-%m-%d %I:%M %p') END
    WHEN novo_colons(_nv_ws) = 2 THEN try_strptime(_nv_ws, '%Y-%m-%d %H:%M:%S')
    ELSE try_strptime(_nv_ws, '%Y-%m-%d %H:%M')
    END)[1])[1] END;

-- wall time in tz -> UTC instant. DST gap (e.g. 02:30 on spring-forward day): read with the offset
-- in force before the change (as Python zoneinfo with fold=0). DST overlap (01:30 on fall-back day):
-- the EARLIER instant (daylight time), also as zoneinfo fold=0. ICU alone picks the later one, so
-- we step back an hour when that instant shows the same wall time.
CREATE OR REPLACE MACRO novo_wall_to_utc(ts, tz) AS list_transform([ts], lambda _nv_w:
    CASE WHEN _nv_w IS NOT NULL THEN list_transform([timezone(tz, _nv_w)], lambda _nv_t:
        CASE WHEN timezone(tz, _nv_t - INTERVAL 1 HOUR) = _nv_w THEN _nv_t - INTERVAL 1 HOUR ELSE _nv_t END)[1]
    END)[1];

-- dates -> DATE (a date-time value in a date column keeps its wall date)
CREATE OR REPLACE MACRO novo_date_parse(v, ord) AS
    CASE WHEN novo_is_null(v) THEN NULL ELSE CAST(novo_wall_ts(v, ord) AS DATE) END;

-- date-times -> TIMESTAMPTZ (an instant; UTC). ISO with Z / +hh:mm / -hhmm is taken as written;
-- without an offset it is wall time in tz. A date alone means midnight wall time.
CREATE OR REPLACE MACRO novo_ts_parse(v, ord, tz) AS
    CASE WHEN NOT novo_is_null(v) THEN
        CASE WHEN regexp_matches(novo_trim(v),
                  '^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)? ?([Zz]|[+-](0\d|1[0-4])(:?[0-5]\d)?)$')
             THEN try_cast(novo_trim(v) AS TIMESTAMPTZ)
             ELSE novo_wall_to_utc(novo_wall_ts(v, ord), tz) END
    END;

-- plausible range: from 1902-01-01 to five years after exported_at, and not the Unix-epoch day.
-- Exports use 1900-01-01, 1901-… and 1970-01-01 as "no date" placeholders, so the lower bound sits
-- just after them (brief: "before 1900"; widened to catch the placeholders the corpus contains).
CREATE OR REPLACE MACRO novo_date_in_range(d, exported_at) AS
    (d >= DATE '1902-01-01' AND d <> DATE '1970-01-01'
     AND d <= CAST(timezone('UTC', exported_at) + INTERVAL 5 YEAR AS DATE));

-- (instants are compared with constant bounds: no per-row time zone conversion, which is costly)
CREATE OR REPLACE MACRO novo_ts_in_range(t, exported_at) AS
    (t >= TIMESTAMPTZ '1902-01-01 00:00:00+00'
     AND NOT (t >= TIMESTAMPTZ '1969-12-31 10:00:00+00' AND t < TIMESTAMPTZ '1970-01-02 14:00:00+00')
     AND t <= timezone('UTC', timezone('UTC', exported_at) + INTERVAL 5 YEAR));

-- *_of(raw, parsed, ...) variants take the value parsed once by the model (parse in one CTE, check
-- in the next): parsing is the expensive step on big files.
CREATE OR REPLACE MACRO novo_date_checked(d, exported_at) AS
    CASE WHEN novo_date_in_range(d, exported_at) THEN d END;

CREATE OR REPLACE MACRO novo_date_issue_of(v, d, exported_at) AS
    CASE WHEN novo_is_null(v) THEN NULL
         WHEN d IS NULL THEN 'bad_date'
         WHEN NOT novo_date_in_range(d, exported_at) THEN 'date_out_of_range' END;

CREATE OR REPLACE MACRO novo_datetime_checked(t, exported_at) AS
    CASE WHEN novo_ts_in_range(t, exported_at) THEN t END;

CREATE OR REPLACE MACRO novo_datetime_issue_of(v, t, exported_at) AS
    CASE WHEN novo_is_null(v) THEN NULL
         WHEN t IS NULL THEN 'bad_datetime'
         WHEN NOT novo_ts_in_range(t, exported_at) THEN 'date_out_of_range' END;

-- one-call forms (value / issue from the raw text)
CREATE OR REPLACE MACRO novo_date(v, ord, exported_at) AS
    list_transform([novo_date_parse(v, ord)], lambda _nv_d: novo_date_checked(_nv_d, exported_at))[1];

CREATE OR REPLACE MACRO novo_date_issue(v, ord, exported_at) AS
    list_transform([novo_date_parse(v, ord)], lambda _nv_d: novo_date_issue_of(v, _nv_d, exported_at))[1];

CREATE OR REPLACE MACRO novo_datetime(v, ord, tz, exported_at) AS
    list_transform([novo_ts_parse(v, ord, tz)], lambda _nv_d: novo_datetime_checked(_nv_d, exported_at))[1];

CREATE OR REPLACE MACRO novo_datetime_issue(v, ord, tz, exported_at) AS
    list_transform([novo_ts_parse(v, ord, tz)], lambda _nv_d: novo_datetime_issue_of(v, _nv_d, exported_at))[1];

-- ---------------------------------------------------------------------------------------------
-- money: $1,234.56 | 1234.56 | 1,234.56 | -12.00 | -$12.00 | $-12.00 | (12.00) | ($12.00)
-- -> DECIMAL(18,2) (more decimals are rounded half away from zero); anything else -> NULL
CREATE OR REPLACE MACRO novo_money_parse(v) AS
    CASE WHEN NOT novo_is_null(v) THEN
        CASE WHEN regexp_matches(novo_trim(v), '^\( *\$? *((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+) *\)$')
             THEN try_cast('-' || regexp_replace(novo_trim(v), '[$,() ]', '', 'g') AS DECIMAL(18, 2))
             WHEN regexp_matches(novo_trim(v), '^([-+] *\$?|\$ *[-+]?)? *((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)$')
             THEN try_cast(regexp_replace(novo_trim(v), '[$, ]', '', 'g') AS DECIMAL(18, 2)) END
    END;

-- an amount with a plausible range [lo, hi] (NULL = unbounded), as for numbers below
CREATE OR REPLACE MACRO novo_money(v, lo := NULL, hi := NULL) AS
    list_transform([novo_money_parse(v)], lambda _nv_m:
        CASE WHEN (lo IS NULL OR _nv_m >= lo) AND (hi IS NULL OR _nv_m <= hi) THEN _nv_m END)[1];

CREATE OR REPLACE MACRO novo_money_issue(v, lo := NULL, hi := NULL) AS
    CASE WHEN NOT novo_is_null(v) THEN list_transform([novo_money_parse(v)], lambda _nv_m:
        CASE WHEN _nv_m IS NULL THEN 'bad_money'
             WHEN lo IS NOT NULL AND _nv_m < lo THEN
                  CASE WHEN lo = 0 THEN 'negative_number' ELSE 'absurd_number' END
             WHEN hi IS NOT NULL AND _nv_m > hi THEN 'absurd_number' END)[1]
    END;

-- *_of(raw, parsed, ...) forms take the value parsed once by the model (big files: Rate, Unit Cost,
-- Hours, Quantity); one range rule and one issue rule for amounts and numbers alike
CREATE OR REPLACE MACRO novo_in_range(x, lo, hi) AS
    CASE WHEN (lo IS NULL OR x >= lo) AND (hi IS NULL OR x <= hi) THEN x END;

CREATE OR REPLACE MACRO novo_range_issue(v, x, unreadable, lo, hi) AS
    CASE WHEN NOT novo_is_null(v) THEN
        CASE WHEN x IS NULL THEN unreadable
             WHEN lo IS NOT NULL AND x < lo THEN
                  CASE WHEN lo = 0 THEN 'negative_number' ELSE 'absurd_number' END
             WHEN hi IS NOT NULL AND x > hi THEN 'absurd_number' END
    END;

CREATE OR REPLACE MACRO novo_money_of(m, lo := NULL, hi := NULL) AS novo_in_range(m, lo, hi);

CREATE OR REPLACE MACRO novo_money_issue_of(v, m, lo := NULL, hi := NULL) AS
    novo_range_issue(v, m, 'bad_money', lo, hi);

-- numbers: 1,234.5 | 1234.5 | -3 | .5 -> DOUBLE; anything else (words, 1e5, inf) -> NULL
CREATE OR REPLACE MACRO novo_number_parse(v) AS
    CASE WHEN novo_is_null(v) THEN NULL
         WHEN regexp_matches(novo_trim(v), '^[-+]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)$')
         THEN try_cast(replace(novo_trim(v), ',', '') AS DOUBLE) END;

-- a number with a plausible range [lo, hi] (NULL = unbounded). Out of range -> NULL + issue:
-- below a lower bound of 0 -> negative_number; any other violation -> absurd_number.
CREATE OR REPLACE MACRO novo_number(v, lo := NULL, hi := NULL) AS
    list_transform([novo_number_parse(v)], lambda _nv_n:
        CASE WHEN (lo IS NULL OR _nv_n >= lo) AND (hi IS NULL OR _nv_n <= hi) THEN _nv_n END)[1];

CREATE OR REPLACE MACRO novo_number_issue(v, lo := NULL, hi := NULL) AS
    CASE WHEN NOT novo_is_null(v) THEN list_transform([novo_number_parse(v)], lambda _nv_n:
        CASE WHEN _nv_n IS NULL THEN 'bad_number'
             WHEN lo IS NOT NULL AND _nv_n < lo THEN
                  CASE WHEN lo = 0 THEN 'negative_number' ELSE 'absurd_number' END
             WHEN hi IS NOT NULL AND _nv_n > hi THEN 'absurd_number' END)[1]
    END;

CREATE OR REPLACE MACRO novo_number_of(n, lo := NULL, hi := NULL) AS novo_in_range(n, lo, hi);

CREATE OR REPLACE MACRO novo_number_issue_of(v, n, lo := NULL, hi := NULL) AS
    novo_range_issue(v, n, 'bad_number', lo, hi);

-- yes/no: Yes/No, Y/N, True/False, 1/0, any case -> BOOLEAN
CREATE OR REPLACE MACRO novo_yesno(v) AS
    CASE WHEN lower(novo_trim(v)) IN ('yes', 'y', 'true', '1') THEN TRUE
         WHEN lower(novo_trim(v)) IN ('no', 'n', 'false', '0') THEN FALSE END;

CREATE OR REPLACE MACRO novo_yesno_issue(v) AS
    CASE WHEN NOT novo_is_null(v) AND novo_yesno(v) IS NULL THEN 'bad_yesno' END;

-- emails: trimmed, lower-cased, and valid (local@domain.tld, RFC-ish, ASCII) or NULL
CREATE OR REPLACE MACRO novo_email(v) AS
    CASE WHEN NOT novo_is_null(v) AND regexp_matches(lower(novo_trim(v)),
              '^[a-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&''*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$')
         THEN lower(novo_trim(v)) END;

CREATE OR REPLACE MACRO novo_email_issue(v) AS
    CASE WHEN NOT novo_is_null(v) AND novo_email(v) IS NULL THEN 'invalid_email' END;

-- multi pick lists: split on '; ', each item trimmed, empty items and null markers dropped
CREATE OR REPLACE MACRO novo_multi(v) AS
    CASE WHEN novo_is_null(v) THEN NULL
         ELSE list_filter(list_transform(string_split(v, '; '), lambda x: novo_trim(x)),
                          lambda x: NOT novo_is_null(x)) END;

-- a documented list of choices; values outside are KEPT but reported (tenants add their own)
CREATE OR REPLACE MACRO novo_choice_issue(v, choices) AS
    CASE WHEN NOT novo_is_null(v) AND NOT list_contains(choices, novo_trim(v)) THEN 'unknown_value' END;

-- every item of a multi value must be one of choices (when the tenant declared choices)
CREATE OR REPLACE MACRO novo_multi_choice_issue(v, choices) AS
    CASE WHEN len(choices) > 0 AND NOT novo_is_null(v)
              AND len(list_filter(novo_multi(v), lambda x: NOT list_contains(choices, x))) > 0
         THEN 'unknown_value' END;

-- ---------------------------------------------------------------------------------------------
-- one value-level quarantine notice, or NULL when code is NULL. The code is bound once (a one-element
-- list_transform, evaluated only for a row with a notice) and the default message looked up in a map:
-- written as a CASE over the code, every notice of a model cost 20 ms to plan.
CREATE OR REPLACE MACRO novo_issue(col, raw, code, message := NULL) AS
    CASE WHEN code IS NOT NULL THEN list_transform([CAST(code AS VARCHAR)], lambda _nv_c: struct_pack(
        "column" := CAST(col AS VARCHAR), raw_value := CAST(raw AS VARCHAR),
        reason_code := _nv_c,
        message := CAST(coalesce(message, MAP {
            'bad_date': 'not a date in a supported format; staged as empty',
            'bad_datetime': 'not a date-time in a supported format; staged as empty',
            'date_out_of_range': 'date before 1900 or more than 5 years after the export; staged as empty',
            'bad_money': 'not a money amount; staged as empty',
            'bad_number': 'not a number; staged as empty',
            'negative_number': 'negative where only zero or more makes sense; staged as empty',
            'absurd_number': 'outside the plausible range; staged as empty',
            'bad_yesno': 'not Yes/No, Y/N, True/False or 1/0; staged as empty',
            'invalid_email': 'not a valid email address; staged as empty',
            'unknown_value': 'not one of the documented values; kept as is for the mapping step',
            'orphan_reference': 'refers to a record that is not in this export; staged as empty'}[_nv_c], _nv_c)
            AS VARCHAR)))[1] END;

-- a value Novo requires but the record can load without (columns.py `required_level` "value"):
-- blank -> a `missing_required` notice naming the column and what happens to the record
CREATE OR REPLACE MACRO novo_required_issue(col, v, record) AS
    novo_issue(col, v, CASE WHEN novo_is_null(v) THEN 'missing_required' END,
               'required ' || col || ' is empty; the ' || record || ' loads without it');

-- the empty list of notices, typed (for models without value checks)
CREATE OR REPLACE MACRO novo_no_issues() AS
    CAST([] AS STRUCT("column" VARCHAR, raw_value VARCHAR, reason_code VARCHAR, message VARCHAR)[]);

-- keep only real notices
CREATE OR REPLACE MACRO novo_issues(l) AS
    CAST(list_filter(l, lambda x: x IS NOT NULL)
         AS STRUCT("column" VARCHAR, raw_value VARCHAR, reason_code VARCHAR, message VARCHAR)[]);
