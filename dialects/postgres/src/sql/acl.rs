//! Privileges at the swap ([`crate::cutover`]): the `GRANT` / `REVOKE` statements that make the
//! new table's ACL, and each column's, exactly the original's, with grantors and grant options.

use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;

use super::owner::{set_local_role, RESET_ROLE};
use super::{Ident, Qualified};

/// One entry of an access control list, as `aclexplode` lists it: `grantee` `None` is PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    /// The role that granted the privilege.
    pub grantor: String,
    /// The role holding it; `None` for PUBLIC.
    pub grantee: Option<String>,
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, `REFERENCES` or `TRIGGER`.
    pub privilege: String,
    /// Held `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// The `GRANT` / `REVOKE` statements that turn the ACL `have` of table `table` (its column
/// `column` when given) into exactly `want` (both as `aclexplode` lists them, a NULL ACL as
/// `acldefault`'s entries): grantor, grantee, privilege and grant option. A GRANT or REVOKE by
/// the owner, a member of its role or a superuser is recorded as the owner's; one whose grantor
/// is another role runs as that role (`SET LOCAL ROLE g; …; RESET ROLE`) when `can_set_role`
/// lists it, so grants made through another role's grant option keep their grantor (PostgreSQL
/// 15 accepts `GRANTED BY` only for the current user); otherwise it is made as the owner's.
/// Revokes come first, those of other grantors before the owner's (theirs depend on the owner's
/// grant option); grants come in an order in which each grantor already holds the grant option
/// it needs. `privilege` must be one of the names listed on [`AclEntry`]; anything else is left
/// out.
pub fn acl_statements(
    table: &TableRef,
    column: Option<&str>,
    owner: &str,
    can_set_role: &[String],
    have: &[AclEntry],
    want: &[AclEntry],
) -> Vec<String> {
    const PRIVILEGES: [&str; 7] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];
    let valid = |e: &&AclEntry| PRIVILEGES.contains(&e.privilege.as_str());
    let on = match column {
        Some(c) => format!("({}) ON TABLE {}", Ident(c), Qualified(table)),
        None => format!("ON TABLE {}", Qualified(table)),
    };
    let who = |g: &Option<String>| g.as_deref().map_or("PUBLIC".to_string(), |r| Ident(r).to_string());
    let same = |a: &AclEntry, b: &AclEntry| a.grantor == b.grantor && a.grantee == b.grantee && a.privilege == b.privilege;
    let by = |grantor: &str, stmt: String| {
        if grantor != owner && can_set_role.iter().any(|r| r == grantor) {
            format!("{}; {stmt}; {RESET_ROLE}", set_local_role(grantor))
        } else {
            stmt
        }
    };
    let mut revokes: Vec<(bool, String)> = Vec::new();
    for h in have.iter().filter(valid) {
        let stmt = match want.iter().find(|w| same(h, w)) {
            None => by(&h.grantor, format!("REVOKE {} {on} FROM {}", h.privilege, who(&h.grantee))),
            Some(w) if h.grantable && !w.grantable => {
                by(&h.grantor, format!("REVOKE GRANT OPTION FOR {} {on} FROM {}", h.privilege, who(&h.grantee)))
            }
            Some(_) => continue,
        };
        revokes.push((h.grantor == owner, stmt));
    }
    revokes.sort_by_key(|(by_owner, _)| *by_owner);
    let mut out: Vec<String> = revokes.into_iter().map(|(_, s)| s).collect();
    let mut pending: Vec<&AclEntry> =
        want.iter().filter(valid).filter(|w| !have.iter().any(|h| same(h, w) && (h.grantable || !w.grantable))).collect();
    // Who holds which grant option once the revokes ran: the owner always does.
    let mut options: Vec<(String, String)> = have
        .iter()
        .filter(|h| h.grantable && want.iter().any(|w| same(h, w) && w.grantable))
        .filter_map(|h| Some((h.grantee.clone()?, h.privilege.clone())))
        .collect();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|w| w.grantor == owner || options.iter().any(|(r, p)| *r == w.grantor && *p == w.privilege))
            .unwrap_or(0);
        let w = pending.remove(ready);
        out.push(by(
            &w.grantor,
            format!("GRANT {} {on} TO {}{}", w.privilege, who(&w.grantee), if w.grantable { " WITH GRANT OPTION" } else { "" }),
        ));
        if let (true, Some(g)) = (w.grantable, &w.grantee) {
            options.push((g.clone(), w.privilege.clone()));
        }
    }
    out
}

/// The ACL entries of a relation `$1` (`column` NULL) and of its columns: column, grantor,
/// grantee (NULL for PUBLIC), privilege, grantable; a NULL table ACL as its default
/// (`acldefault`), a NULL column ACL as none.
pub const ACL_ENTRIES: &str = "SELECT col, pg_get_userbyid(a.grantor)::text, \
        CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type, a.is_grantable \
 FROM (SELECT NULL::text AS col, coalesce(c.relacl, acldefault('r', c.relowner)) AS acl FROM pg_class c \
       WHERE c.oid = $1::text::regclass \
       UNION ALL SELECT att.attname::text, att.attacl FROM pg_attribute att \
       WHERE att.attrelid = $1::text::regclass AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL) x, \
      aclexplode(x.acl) a ORDER BY 1, 2, 3, 4";

/// The roles the session may act as (`SET ROLE`), to make a grant in its grantor's name.
pub const SETTABLE_ROLES: &str = "SELECT rolname::text FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1";

/// After the renames: the statements that make the new table's ACL, and each column's, equal
/// the original's (now `plan.names.old`) — `old` and `new` as [`ACL_ENTRIES`] lists them for the
/// old and the new table ([`acl_statements`] for each). A column follows the ALTER's renames; a
/// column the ALTER adds has no column privileges, as with a plain ALTER.
pub fn acls(
    plan: &Plan,
    owner: &str,
    can_set_role: &[String],
    old: &[(Option<String>, AclEntry)],
    new: &[(Option<String>, AclEntry)],
) -> Vec<String> {
    let t = &plan.names.table;
    let of = |list: &[(Option<String>, AclEntry)], col: Option<&str>| -> Vec<AclEntry> {
        list.iter().filter(|(c, _)| c.as_deref() == col).map(|(_, e)| e.clone()).collect()
    };
    let mut out = acl_statements(t, None, owner, can_set_role, &of(new, None), &of(old, None));
    let mut columns: Vec<&str> = plan.mapping.iter().map(|m| m.target.as_str()).collect();
    for (c, _) in new {
        if let Some(c) = c.as_deref().filter(|c| !columns.contains(c)) {
            columns.push(c);
        }
    }
    for target in columns {
        let want = match plan.mapping.iter().find(|m| m.target == target) {
            Some(m) => of(old, Some(&m.source)),
            None => Vec::new(),
        };
        out.extend(acl_statements(t, Some(target), owner, can_set_role, &of(new, Some(target)), &want));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::renaming;

    fn acl(grantor: &str, grantee: Option<&str>, privilege: &str, grantable: bool) -> AclEntry {
        AclEntry { grantor: grantor.into(), grantee: grantee.map(str::to_string), privilege: privilege.into(), grantable }
    }

    #[test]
    fn acls_are_made_equal_exactly() {
        let t = TableRef::new("public", "secrets");
        let have = [
            acl("o", Some("o"), "SELECT", false),
            acl("o", Some("o"), "DELETE", false),
            acl("o", Some("reader"), "SELECT", false),
            acl("o", None, "SELECT", false),
            acl("o", Some("app"), "INSERT", true),
        ];
        let want = [
            acl("o", Some("o"), "SELECT", false),
            acl("o", Some("app"), "INSERT", false),
            acl("o", Some("Odd \"One\""), "INSERT", false),
            acl("o", Some("app"), "UPDATE", true),
        ];
        assert_eq!(
            acl_statements(&t, None, "o", &[], &have, &want),
            [
                "REVOKE DELETE ON TABLE \"public\".\"secrets\" FROM \"o\"",
                "REVOKE SELECT ON TABLE \"public\".\"secrets\" FROM \"reader\"",
                "REVOKE SELECT ON TABLE \"public\".\"secrets\" FROM PUBLIC",
                "REVOKE GRANT OPTION FOR INSERT ON TABLE \"public\".\"secrets\" FROM \"app\"",
                "GRANT INSERT ON TABLE \"public\".\"secrets\" TO \"Odd \"\"One\"\"\"",
                "GRANT UPDATE ON TABLE \"public\".\"secrets\" TO \"app\" WITH GRANT OPTION",
            ]
        );
        assert!(acl_statements(&t, None, "o", &[], &want, &want).is_empty());
    }

    #[test]
    fn acl_grants_wait_for_the_grant_option_they_need() {
        let t = TableRef::new("s", "t");
        let want =
            [acl("b", Some("c"), "SELECT", false), acl("a", Some("b"), "SELECT", true), acl("o", Some("a"), "SELECT", true)];
        assert_eq!(
            acl_statements(&t, Some("Col"), "o", &["a".into(), "o".into()], &[], &want),
            [
                "GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"a\" WITH GRANT OPTION",
                "SET LOCAL ROLE \"a\"; GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"b\" WITH GRANT OPTION; RESET ROLE",
                // The session cannot act as b: the grant is made as the owner's.
                "GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"c\"",
            ]
        );
        assert_eq!(
            acl_statements(&t, None, "o", &["b".into()], &[acl("b", None, "UPDATE", false)], &[]),
            ["SET LOCAL ROLE \"b\"; REVOKE UPDATE ON TABLE \"s\".\"t\" FROM PUBLIC; RESET ROLE"]
        );
        // Unknown privilege names never reach SQL.
        assert!(acl_statements(&t, None, "o", &[], &[], &[acl("o", Some("x"), "SELECT; DROP TABLE t", false)]).is_empty());
    }

    #[test]
    fn acls_follow_renamed_columns() {
        let plan = renaming();
        let old = [(None, acl("o", Some("o"), "SELECT", false)), (Some("n".to_string()), acl("o", Some("app"), "UPDATE", false))];
        let new = [(None, acl("o", Some("o"), "SELECT", false)), (None, acl("o", Some("me"), "SELECT", false))];
        assert_eq!(
            acls(&plan, "o", &[], &old, &new),
            [
                "REVOKE SELECT ON TABLE \"public\".\"t\" FROM \"me\"",
                "GRANT UPDATE (\"amount\") ON TABLE \"public\".\"t\" TO \"app\"",
            ]
        );
        assert!(ACL_ENTRIES.ends_with("aclexplode(x.acl) a ORDER BY 1, 2, 3, 4"));
        assert!(SETTABLE_ROLES.contains("pg_has_role(current_user, oid, 'MEMBER')"));
    }
}
