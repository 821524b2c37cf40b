//! Working as the table's owner ([`crate::owner`]): the helper function that runs one
//! statement as the owner, acting as the owner for a transaction, the user's search path for
//! the ALTER text, and the owner's look-ups.

use super::Ident;

/// A `search_path` value (the text `set_config('search_path', …)` takes) that searches
/// `pg_catalog` first and then `schemas` in order, each quoted as an identifier. Used only for
/// the user's ALTER text, which runs as the table's owner (see [`as_owner_function`]).
pub fn search_path_value(schemas: &[String]) -> String {
    std::iter::once("pg_catalog")
        .chain(schemas.iter().map(String::as_str).filter(|s| *s != "pg_catalog"))
        .map(|s| Ident(s).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SET LOCAL ROLE "owner"`: what follows in the transaction runs as (and creates objects owned
/// by) `role`. On its own this is no security boundary, since code running under it may
/// `RESET ROLE` back to the session user; user code is run through [`as_owner_function`] instead.
pub fn set_local_role(role: &str) -> String {
    format!("SET LOCAL ROLE {}", Ident(role))
}

/// Back to the session's own role (`RESET ROLE`).
pub const RESET_ROLE: &str = "RESET ROLE";

/// The most parameters one statement run through [`as_owner_function`] may use (`$1` … `$64`):
/// a chunk's two bounds of a key of at most 32 columns (`INDEX_MAX_KEYS`).
pub const AS_OWNER_MAX_PARAMS: usize = 64;

/// Name of the function [`as_owner_function`] creates for the role with OID `owner`, in the
/// session's temporary schema.
pub fn as_owner_name(owner: u32) -> String {
    format!("pg_temp.shadowswap_as_owner_{owner}")
}

/// The body of [`as_owner_function`], exactly as `pg_proc.prosrc` stores it.
pub fn as_owner_body() -> String {
    let using = (1..=AS_OWNER_MAX_PARAMS).map(|i| format!("p[{i}]")).collect::<Vec<_>>().join(", ");
    format!(
        "\nDECLARE n bigint;\n\
         BEGIN\n\
         \x20 IF sp IS NOT NULL THEN PERFORM pg_catalog.set_config('search_path', sp, true); END IF;\n\
         \x20 EXECUTE q USING {using};\n\
         \x20 GET DIAGNOSTICS n = ROW_COUNT;\n\
         \x20 RETURN n;\n\
         END\n"
    )
}

/// A `SECURITY DEFINER` function in the session's temporary schema that runs one statement
/// (`q`, with text parameters `p[1]…` as `$1…`, and `sp`, when not NULL, as its `search_path`)
/// and returns its row count. Created while the session acts as the table's owner (see
/// [`AS_OWNER_ENTER`]), it is owned by and runs as the owner; inside a security-definer
/// function PostgreSQL refuses `SET ROLE`, `RESET ROLE` and `SET SESSION AUTHORIZATION`
/// ("cannot set parameter "role" within security-definer function"), so the table's CHECK,
/// DEFAULT and index expressions, evaluated there, cannot get back to the session user's
/// privileges. `SET search_path FROM CURRENT` restores the pinned search path when it returns.
/// The body is fixed text.
///
/// It stays for the session (temporary objects last as long as it) with `EXECUTE` revoked from
/// PUBLIC: whoever can still call it (the owner, members of its role, superusers) can already
/// act as the owner. The owner's own code, running in the session, could replace or alter it,
/// so [`AS_OWNER_ENTER`] checks it is intact before every use, and it is created again
/// (`CREATE OR REPLACE`) when it is not.
pub fn as_owner_function(owner: u32) -> String {
    let name = as_owner_name(owner);
    format!(
        "CREATE OR REPLACE FUNCTION {name}(q text, p text[], sp text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER \
         SET search_path FROM CURRENT AS $shadowswap_as_owner${}$shadowswap_as_owner$; \
         REVOKE ALL ON FUNCTION {name}(text, text[], text) FROM PUBLIC",
        as_owner_body()
    )
}

/// Starts acting as the owner of the table `$1` (its quoted name) in the transaction
/// (`set_config('role', …, true)`, which is `SET LOCAL ROLE`), and returns the owner's OID and
/// whether [`as_owner_function`] exists for it intact: owned by the owner, `SECURITY DEFINER`,
/// PL/pgSQL, the signature `(text, text[], text)`, the body `$2` ([`as_owner_body`]) and the
/// session's pinned search path. Everything is schema-qualified.
pub const AS_OWNER_ENTER: &str = "SELECT c.relowner::pg_catalog.int8, \
        pg_catalog.set_config('role', pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text, true), \
        EXISTS (SELECT FROM pg_catalog.pg_proc p \
                WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() \
                  AND p.proname OPERATOR(pg_catalog.=) ('shadowswap_as_owner_' OPERATOR(pg_catalog.||) c.relowner::pg_catalog.text) \
                  AND p.proowner OPERATOR(pg_catalog.=) c.relowner AND p.prosecdef AND p.prokind OPERATOR(pg_catalog.=) 'f' \
                  AND p.prolang OPERATOR(pg_catalog.=) (SELECT l.oid FROM pg_catalog.pg_language l \
                                                        WHERE l.lanname OPERATOR(pg_catalog.=) 'plpgsql') \
                  AND p.proargtypes::pg_catalog.text OPERATOR(pg_catalog.=) '25 1009 25' \
                  AND p.prosrc OPERATOR(pg_catalog.=) $2 \
                  AND p.proconfig OPERATOR(pg_catalog.=) \
                      ARRAY['search_path=' OPERATOR(pg_catalog.||) pg_catalog.current_setting('search_path')]) \
     FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.text::pg_catalog.regclass";

/// The call of [`as_owner_function`], its signature spelled out (no overload can be chosen
/// instead): `$1` the statement, `$2` its parameters, `$3` the search path or NULL.
pub fn as_owner_call(owner: u32) -> String {
    format!("SELECT {}($1::pg_catalog.text, $2::pg_catalog.text[], $3::pg_catalog.text)", as_owner_name(owner))
}

/// The name of the owner of `$1` (`pg_class.relowner`), unquoted.
pub const OWNER_OF: &str = "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = $1::text::regclass";

/// What working as the owner of `$1` needs: the owner's name, `USAGE` and `CREATE` on the
/// table's schema, `TEMPORARY` on the database, the database's name, and whether the owner
/// would be subject to `FORCE ROW LEVEL SECURITY` (not a superuser, no `BYPASSRLS`).
pub const OWNER_PRIVILEGES: &str = "SELECT pg_get_userbyid(c.relowner)::text, \
        has_schema_privilege(c.relowner, c.relnamespace, 'USAGE') AND has_schema_privilege(c.relowner, c.relnamespace, 'CREATE'), \
        has_database_privilege(c.relowner, current_database(), 'TEMPORARY'), current_database()::text, \
        c.relrowsecurity AND c.relforcerowsecurity AND NOT (r.rolsuper OR r.rolbypassrls) \
 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = $1::text::regclass";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_work_builders() {
        assert_eq!(set_local_role("Own\"er"), "SET LOCAL ROLE \"Own\"\"er\"");
        assert_eq!(
            search_path_value(&["public".into(), "pg_catalog".into(), "My S".into()]),
            "\"pg_catalog\", \"public\", \"My S\""
        );
        assert_eq!(search_path_value(&[]), "\"pg_catalog\"");
        let f = as_owner_function(16384);
        assert!(
            f.starts_with(
                "CREATE OR REPLACE FUNCTION pg_temp.shadowswap_as_owner_16384(q text, p text[], sp text) RETURNS bigint \
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $shadowswap_as_owner$\nDECLARE"
            ),
            "{f}"
        );
        assert!(f.contains("EXECUTE q USING p[1], p[2], "), "{f}");
        assert!(f.contains(", p[64];\n"), "{f}");
        assert!(f.contains(&format!("$shadowswap_as_owner${}$shadowswap_as_owner$; ", as_owner_body())), "{f}");
        assert!(f.ends_with("; REVOKE ALL ON FUNCTION pg_temp.shadowswap_as_owner_16384(text, text[], text) FROM PUBLIC"), "{f}");
        assert!(!as_owner_body().contains('$'));
        assert_eq!(
            as_owner_call(7),
            "SELECT pg_temp.shadowswap_as_owner_7($1::pg_catalog.text, $2::pg_catalog.text[], $3::pg_catalog.text)"
        );
        assert!(AS_OWNER_ENTER.contains("'shadowswap_as_owner_'"));
        assert_eq!(OWNER_OF, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = $1::text::regclass");
        assert!(
            OWNER_PRIVILEGES.ends_with("FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = $1::text::regclass")
        );
    }
}
