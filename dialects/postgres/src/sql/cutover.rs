//! The cut-over's statements ([`crate::cutover`]): the swap transaction, built by the pure
//! [`swap`] from the plan and the catalog facts [`crate::deps::read_deps`] read, then the
//! renames of generated constraint names and the ACLs ([`super::acl`]; each read again after the
//! renames), and the work around it: `ANALYZE` before, `VALIDATE CONSTRAINT` and
//! `REFRESH PUBLICATION` after.
//! [`outline`] is what the dry run prints, from the same builders.
//!
//! Foreign keys from other tables are re-added `NOT VALID` inside the transaction (no scan under
//! the lock) and validated right after it, which takes only a `SHARE UPDATE EXCLUSIVE` lock.

use std::time::Duration;

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{byte_len, generated_name, Names};
use shadowswap_engine::plan::Plan;

use super::capture::{capture_triggers, drop_capture};
use super::connect::set_lock_timeout;
use super::deps::{
    cluster_on, comment_on_constraint, comment_on_policy, comment_on_sequence, comment_on_statistics, comment_on_trigger,
    grant_on_sequence, index_column_statistics, rename_statistics, replace_rule, replica_identity_index, statistics_owner,
    statistics_schema, statistics_target, view_options,
};
use super::shadow::{add_constraint, CATALOG_SEARCH_PATH};
use super::{literal, Ident, Qualified, ServerQuoted};
use crate::deps::{Deps, IdentitySequence, Statistics};
use crate::MAX_IDENTIFIER_BYTES;

/// `ANALYZE <table>`: the shadow's statistics, before the first cut-over attempt, so the
/// planner has them the moment it becomes the table.
pub fn analyze(table: &TableRef) -> String {
    format!("ANALYZE {}", Qualified(table))
}

/// `LOCK TABLE <table>, <shadow> IN ACCESS EXCLUSIVE MODE`: the swap's locks, the table first
/// (every session that locks both does so in that order).
pub fn lock_tables(names: &Names) -> String {
    format!("LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE", Qualified(&names.table), Qualified(&names.shadow))
}

/// The first batch of the swap transaction, in one round trip: the lock timeout, the locks
/// ([`lock_tables`]), and `search_path = pg_catalog` for the catalog reads that follow.
pub fn begin_swap(names: &Names, lock_timeout: Duration) -> String {
    format!("{}; {}; {CATALOG_SEARCH_PATH}", set_lock_timeout(lock_timeout), lock_tables(names))
}

/// `ALTER TABLE <table> RENAME TO <to>` (`to` in the same schema).
pub fn rename_table(table: &TableRef, to: &str) -> String {
    format!("ALTER TABLE {} RENAME TO {}", Qualified(table), Ident(to))
}

/// What the dry run shows of the cut-over: the transaction's locks and renames as the run's
/// builders write them ([`lock_tables`], [`rename_table`]), and a list of what follows.
pub fn outline(plan: &Plan) -> String {
    let n = &plan.names;
    format!(
        "BEGIN; SET LOCAL lock_timeout = …; {}; DROP TRIGGER … (capture); {}; {}; \
         -- then: index and constraint names, statistics objects, owned sequences and identity values (with their grants), \
         views (with their options), functions with SQL-standard bodies, rules and policies of other tables, NOT VALID \
         constraints, foreign keys from other tables, grants, row-level security and policies, replica identity, \
         CLUSTER ON, comment, owner, triggers of the table's own; COMMIT",
        lock_tables(n),
        rename_table(&n.table, &n.old.name),
        rename_table(&n.shadow, &n.table.name)
    )
}

/// `_<name>_old`, within the identifier limit: where the old table's indexes, statistics
/// objects and identity sequences move aside to.
pub fn old_name(name: &str) -> String {
    generated_name(name, "old", MAX_IDENTIFIER_BYTES, byte_len)
}

/// `LOCK TABLE <child> IN SHARE ROW EXCLUSIVE MODE`: a table whose foreign key the swap
/// re-points, locked as `ALTER TABLE … ADD FOREIGN KEY` would, before anything else.
pub fn lock_referencing(child: &ServerQuoted) -> String {
    format!("LOCK TABLE {child} IN SHARE ROW EXCLUSIVE MODE")
}

/// `ALTER INDEX <schema>.<from> RENAME TO <to>`.
pub fn rename_index(schema: &str, from: &str, to: &str) -> String {
    format!("ALTER INDEX {}.{} RENAME TO {}", Ident(schema), Ident(from), Ident(to))
}

/// `ALTER TABLE <table> OWNER TO <owner>`.
pub fn owner_to(table: &TableRef, owner: &ServerQuoted) -> String {
    format!("ALTER TABLE {} OWNER TO {owner}", Qualified(table))
}

/// `ALTER SEQUENCE <sequence> OWNED BY <table>.<column>`.
pub fn owned_by(sequence: &ServerQuoted, table: &TableRef, column: &str) -> String {
    format!("ALTER SEQUENCE {sequence} OWNED BY {}.{}", Qualified(table), Ident(column))
}

/// The swap's statements for one identity sequence: the new one continues from the old one's
/// value, the old one moves aside (`_<name>_old`), the new one takes its name, grants and
/// comment.
pub fn identity_sequence(s: &IdentitySequence) -> Vec<String> {
    let (old, new) = (&s.old, &s.new);
    let bare = &s.old_name;
    let mut out = vec![
        format!("SELECT setval({}, s.last_value, s.is_called) FROM {old} s", literal(new.as_str())),
        format!("ALTER SEQUENCE {old} RENAME TO {}", Ident(&old_name(bare))),
        format!("ALTER SEQUENCE {new} RENAME TO {}", Ident(bare)),
    ];
    out.extend(s.grants.iter().map(|(privilege, grantee)| grant_on_sequence(old, privilege, grantee)));
    out.extend(s.comment.iter().map(|c| comment_on_sequence(old, c)));
    out
}

/// `ALTER TABLE <child> DROP CONSTRAINT <name>`.
pub fn drop_foreign_key(child: &ServerQuoted, name: &str) -> String {
    format!("ALTER TABLE {child} DROP CONSTRAINT {}", Ident(name))
}

/// `ALTER TABLE <child> ADD CONSTRAINT <name> <def> NOT VALID`: a foreign key re-added without
/// a scan under the swap's lock ([`validate_constraint`] after it).
pub fn add_foreign_key_not_valid(child: &ServerQuoted, name: &str, def: &ServerQuoted) -> String {
    format!("ALTER TABLE {child} ADD CONSTRAINT {} {def} NOT VALID", Ident(name))
}

/// The trigger's `tgenabled` state on the new table, when it is not the default (`O`):
/// `DISABLE TRIGGER`, `ENABLE REPLICA TRIGGER`, `ENABLE ALWAYS TRIGGER`.
pub fn trigger_state(table: &TableRef, name: &str, enabled: &str) -> Option<String> {
    let how = match enabled {
        "D" => "DISABLE",
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => return None,
    };
    Some(format!("ALTER TABLE {} {how} TRIGGER {}", Qualified(table), Ident(name)))
}

/// `ALTER TABLE <table> ENABLE ROW LEVEL SECURITY` / `FORCE ROW LEVEL SECURITY`.
pub fn row_security(table: &TableRef, force: bool) -> String {
    format!("ALTER TABLE {} {} ROW LEVEL SECURITY", Qualified(table), if force { "FORCE" } else { "ENABLE" })
}

/// `ALTER TABLE <table> REPLICA IDENTITY FULL` / `NOTHING` for `relreplident` `f` / `n`; the
/// default needs nothing, an index is set by [`replica_identity_index`].
pub fn replica_identity(table: &TableRef, relreplident: &str) -> Option<String> {
    let what = match relreplident {
        "f" => "FULL",
        "n" => "NOTHING",
        _ => return None,
    };
    Some(format!("ALTER TABLE {} REPLICA IDENTITY {what}", Qualified(table)))
}

/// `COMMENT ON TABLE <table> IS '…'`.
pub fn comment_on_table(table: &TableRef, comment: &str) -> String {
    format!("COMMENT ON TABLE {} IS {}", Qualified(table), literal(comment))
}

/// The ALTER's column renames as `(new, old)`.
pub fn column_renames(plan: &Plan) -> Vec<(&str, &str)> {
    plan.mapping.iter().filter(|m| m.source != m.target).map(|m| (m.target.as_str(), m.source.as_str())).collect()
}

/// Index names: each of the original's indexes that the new table has too (same definition,
/// read across the ALTER's column `renamed`) moves aside to `_<name>_old`, then the new table's
/// takes its name. Returns the statements and the names the new table's indexes now carry.
pub fn index_renames(
    schema: &str,
    old: &[(String, String)],
    new: &[(String, String)],
    renamed: &[(&str, &str)],
) -> (Vec<String>, Vec<String>) {
    let mut used = vec![false; new.len()];
    let new_defs: Vec<String> = new.iter().map(|(_, nd)| index_def_key(nd, renamed)).collect();
    let (mut aside, mut take, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (name, def) in old {
        let def = index_def_key(def, &[]);
        if let Some(i) = new_defs.iter().enumerate().position(|(i, nd)| !used[i] && *nd == def) {
            used[i] = true;
            names.push(name.clone());
            aside.push(rename_index(schema, name, &old_name(name)));
            take.push(rename_index(schema, &new[i].0, name));
        }
    }
    aside.extend(take);
    (aside, names)
}

/// Statistics objects: `LIKE` copied them to the shadow under generated names (and the ALTER
/// dropped or followed them as it would on the table); matched by kinds and columns (read across
/// the ALTER's column `renamed`), the original's move aside and the copies take their names,
/// schema, owner, target and comment.
pub fn statistics_renames(old: &[Statistics], new: &[Statistics], renamed: &[(&str, &str)]) -> Vec<String> {
    let mut used = vec![false; new.len()];
    let new_keys: Vec<String> = new.iter().map(|x| index_def_key(&x.key, renamed)).collect();
    let (mut aside, mut take) = (Vec::new(), Vec::new());
    for o in old {
        let (schema, name) = (&o.schema, &o.name);
        let key = index_def_key(&o.key, &[]);
        let Some(i) = (0..new.len()).find(|&i| !used[i] && new_keys[i] == key) else { continue };
        used[i] = true;
        let copy = &new[i];
        aside.push(rename_statistics(schema, name, &old_name(name)));
        take.push(rename_statistics(&copy.schema, &copy.name, name));
        if copy.schema != *schema {
            take.push(statistics_schema(&copy.schema, name, schema));
        }
        if copy.owner != o.owner {
            take.push(statistics_owner(schema, name, &o.owner));
        }
        if o.target >= 0 {
            take.push(statistics_target(schema, name, o.target));
        }
        if let Some(c) = &o.comment {
            take.push(comment_on_statistics(schema, name, c));
        }
    }
    aside.extend(take);
    aside
}

/// The swap transaction's statements after its first batch ([`begin_swap`]) and the checks
/// under its lock, in order: lock the tables whose foreign keys are re-pointed; drop the
/// capture; rename the table to the old name and the shadow to the table's; index and
/// statistics-object names; owner (first: `OWNED BY` needs the same owner on both sides);
/// sequences owned by a column (following the column to its new name; a dropped column's stay
/// with the old table); identity sequences; views with their options; functions with
/// SQL-standard bodies, other tables' rules and policies; `NOT VALID` constraints and constraint
/// comments; foreign keys from other tables, re-added `NOT VALID`; the user's triggers in their
/// state; row-level security and policies; trigger and policy comments; replica identity;
/// `REPLICA IDENTITY USING INDEX`, `CLUSTER ON` and index column statistics targets (for
/// indexes the new table has under the original's name); the table's comment. Generated
/// constraint names ([`rename_constraint`]) and ACLs ([`super::acl::acls`]) follow, from catalog reads made
/// after these ran.
pub fn swap(plan: &Plan, d: &Deps) -> Vec<String> {
    let n = &plan.names;
    let t = &n.table;
    let renamed = column_renames(plan);
    let mut out: Vec<String> = d.foreign_keys_in.iter().map(|fk| lock_referencing(&fk.child)).collect();
    out.extend(capture_triggers(n).iter().flat_map(|name| drop_capture(t, name)));
    out.push(rename_table(t, &n.old.name));
    out.push(rename_table(&n.shadow, &t.name));
    let (index_renames, new_index_names) = index_renames(&t.schema, &d.old_indexes, &d.new_indexes, &renamed);
    out.extend(index_renames);
    out.extend(statistics_renames(&d.old_statistics, &d.new_statistics, &renamed));
    if let Some(owner) = d.owner.as_ref().filter(|o| o.as_str() != "CURRENT_USER") {
        out.push(owner_to(t, owner));
    }
    let target_of = |col: &str| plan.mapping.iter().find(|m| m.source == col).map(|m| m.target.as_str());
    for (seq, col) in &d.owned_sequences {
        if let Some(target) = target_of(col) {
            out.push(owned_by(seq, t, target));
        }
    }
    out.extend(d.identity_sequences.iter().flat_map(identity_sequence));
    for v in &d.views {
        out.push(v.create.to_string());
        out.extend(view_options(&v.name, &v.options));
    }
    out.extend(d.functions.iter().map(ServerQuoted::to_string));
    out.extend(d.rules.iter().map(replace_rule));
    out.extend(d.other_policies.iter().map(ServerQuoted::to_string));
    out.extend(d.not_valid.iter().map(|(name, def)| add_constraint(t, name, def)));
    out.extend(d.constraint_comments.iter().map(|(name, c)| comment_on_constraint(t, name, c)));
    for fk in &d.foreign_keys_in {
        out.push(drop_foreign_key(&fk.child, &fk.name));
        out.push(add_foreign_key_not_valid(&fk.child, &fk.name, &fk.def));
    }
    for tg in &d.triggers {
        out.push(tg.def.to_string());
        out.extend(trigger_state(t, &tg.name, &tg.enabled));
    }
    if d.row_security {
        out.push(row_security(t, false));
    }
    if d.force_row_security {
        out.push(row_security(t, true));
    }
    out.extend(d.policies.iter().map(ServerQuoted::to_string));
    out.extend(d.policy_comments.iter().map(|(name, c)| comment_on_policy(t, name, c)));
    out.extend(d.trigger_comments.iter().map(|(name, c)| comment_on_trigger(t, name, c)));
    out.extend(replica_identity(t, &d.replica_identity));
    for (index, replident, clustered) in d.index_roles.iter().filter(|(i, _, _)| new_index_names.contains(i)) {
        if *replident {
            out.push(replica_identity_index(t, index));
        }
        if *clustered {
            out.push(cluster_on(t, index));
        }
    }
    for (index, column, target) in d.index_column_targets.iter().filter(|(i, _, _)| new_index_names.contains(i)) {
        out.push(index_column_statistics(&t.schema, index, *column, *target));
    }
    out.extend(d.comment.iter().map(|c| comment_on_table(t, c)));
    out
}

/// `ALTER TABLE "s"."t" RENAME CONSTRAINT "old" TO "new"`: renames the constraint and, for a
/// primary, unique or exclusion key, its index too (PostgreSQL docs, ALTER TABLE).
pub fn rename_constraint(table: &TableRef, old: &str, new: &str) -> String {
    format!("ALTER TABLE {} RENAME CONSTRAINT {} TO {}", Qualified(table), Ident(old), Ident(new))
}

/// An index definition (`pg_get_indexdef` after `USING`) as a comparison key, with the column
/// names `renamed` (new name, old name) read as their old names. Only ever compared, never run.
pub fn index_def_key(def: &str, renamed: &[(&str, &str)]) -> String {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, def).tokenize() else { return def.to_string() };
    tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) => match renamed.iter().find(|(new, _)| *new == w.value) {
                Some((_, old)) => Ident(old).to_string(),
                None => Ident(&w.value).to_string(),
            },
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)`: the subscription looks
/// its published tables up by name again, so the swapped-in table (a new OID) is registered as
/// ready and the old table's entry is removed. `copy_data = false`: the table already holds the
/// data. Note: any table newly added to the publication since the subscription's last refresh is
/// registered without its initial copy too (PostgreSQL documentation, ALTER SUBSCRIPTION).
/// Cannot run inside a transaction block.
pub fn refresh_subscription(name: &str) -> String {
    format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)", Ident(name))
}

/// The foreign keys of other tables to `$1` that are `NOT VALID` (those the swap re-added):
/// referencing table, name.
pub const FOREIGN_KEYS_TO_VALIDATE: &str = "SELECT conrelid::regclass::text, conname::text FROM pg_constraint \
 WHERE confrelid = $1::text::regclass AND contype = 'f' AND NOT convalidated";

/// `ALTER TABLE <child> VALIDATE CONSTRAINT <name>`: a scan under `SHARE UPDATE EXCLUSIVE`,
/// which blocks no reads or writes.
pub fn validate_constraint(child: &ServerQuoted, name: &str) -> String {
    format!("ALTER TABLE {child} VALIDATE CONSTRAINT {}", Ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::{ForeignKeyIn, Trigger, View};
    use crate::testing::{col, plan_for, renaming};

    #[test]
    fn constraints_are_renamed_with_quoted_names() {
        assert_eq!(
            rename_constraint(&TableRef::new("s\"x", "t"), "_t_new_c2_key", "t_c2\"key"),
            r#"ALTER TABLE "s""x"."t" RENAME CONSTRAINT "_t_new_c2_key" TO "t_c2""key""#
        );
    }

    #[test]
    fn index_definitions_compare_across_column_renames() {
        let renamed = [("tid", "id"), ("New Name", "n")];
        assert_eq!(index_def_key("btree (tid)", &renamed), index_def_key("btree (id)", &[]));
        assert_eq!(
            index_def_key("u btree (lower(\"New Name\")) INCLUDE (x) WHERE (tid > 0)", &renamed),
            index_def_key("u btree (lower(n)) INCLUDE (x) WHERE (id > 0)", &[])
        );
        assert_ne!(index_def_key("btree (tid)", &[]), index_def_key("btree (id)", &[]));
        assert_ne!(index_def_key("u btree (id)", &[]), index_def_key("btree (id)", &[]));
    }

    fn q(s: &str) -> ServerQuoted {
        ServerQuoted::test(s)
    }

    fn plain() -> Plan {
        plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int")
    }

    const CAPTURE_DROPS: [&str; 8] = [
        "DROP TRIGGER IF EXISTS \"_t_ssw_ins\" ON \"public\".\"t\"",
        "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_ins\"()",
        "DROP TRIGGER IF EXISTS \"_t_ssw_upd\" ON \"public\".\"t\"",
        "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_upd\"()",
        "DROP TRIGGER IF EXISTS \"_t_ssw_del\" ON \"public\".\"t\"",
        "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_del\"()",
        "DROP TRIGGER IF EXISTS \"_t_ssw_trn\" ON \"public\".\"t\"",
        "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_trn\"()",
    ];
    const RENAMES: [&str; 2] =
        ["ALTER TABLE \"public\".\"t\" RENAME TO \"_t_old\"", "ALTER TABLE \"public\".\"_t_new\" RENAME TO \"t\""];

    #[test]
    fn a_table_with_nothing_bound_to_it_is_renamed_and_nothing_else() {
        let d = Deps { replica_identity: "d".into(), ..Deps::default() };
        let want: Vec<String> = CAPTURE_DROPS.iter().chain(&RENAMES).map(|s| s.to_string()).collect();
        assert_eq!(swap(&plain(), &d), want);
    }

    #[test]
    fn the_dry_run_outline_quotes_the_runs_own_statements() {
        let plan = plain();
        let n = &plan.names;
        let o = outline(&plan);
        assert_eq!(
            o,
            "BEGIN; SET LOCAL lock_timeout = …; LOCK TABLE \"public\".\"t\", \"public\".\"_t_new\" IN ACCESS EXCLUSIVE MODE; \
             DROP TRIGGER … (capture); ALTER TABLE \"public\".\"t\" RENAME TO \"_t_old\"; ALTER TABLE \"public\".\"_t_new\" RENAME TO \"t\"; \
             -- then: index and constraint names, statistics objects, owned sequences and identity values (with their grants), \
             views (with their options), functions with SQL-standard bodies, rules and policies of other tables, NOT VALID \
             constraints, foreign keys from other tables, grants, row-level security and policies, replica identity, \
             CLUSTER ON, comment, owner, triggers of the table's own; COMMIT"
        );
        // Every statement the outline names is one the run's swap runs.
        let run = swap(&plan, &Deps::default());
        for s in &RENAMES {
            assert!(o.contains(s) && run.iter().any(|r| r == s), "{s}");
        }
        assert!(o.contains(&lock_tables(n)));
        assert_eq!(
            begin_swap(n, Duration::from_millis(40)),
            format!("SET LOCAL lock_timeout = '40ms'; {}; SET LOCAL search_path = pg_catalog, pg_temp", lock_tables(n))
        );
        assert_eq!(analyze(&n.shadow), "ANALYZE \"public\".\"_t_new\"");
    }

    #[test]
    fn views_keep_their_options_and_foreign_keys_are_re_pointed() {
        let d = Deps {
            views: vec![
                View {
                    create: q("CREATE OR REPLACE VIEW public.v AS  SELECT t.id FROM public.t;"),
                    name: q("public.v"),
                    options: vec!["security_barrier=true".into(), "check_option=local".into()],
                },
                View { create: q("CREATE OR REPLACE VIEW public.w AS  SELECT 1;"), name: q("public.w"), options: vec![] },
            ],
            foreign_keys_in: vec![ForeignKeyIn {
                name: "c_t_fkey".into(),
                child: q("public.c"),
                def: q("FOREIGN KEY (t_id) REFERENCES public.t(id)"),
            }],
            ..Deps::default()
        };
        let s = swap(&plain(), &d);
        assert_eq!(s[0], "LOCK TABLE public.c IN SHARE ROW EXCLUSIVE MODE");
        assert_eq!(s[1..9], CAPTURE_DROPS);
        assert_eq!(
            s[11..],
            [
                "CREATE OR REPLACE VIEW public.v AS  SELECT t.id FROM public.t;",
                "ALTER VIEW public.v SET (security_barrier = E'true', check_option = E'local')",
                "CREATE OR REPLACE VIEW public.w AS  SELECT 1;",
                "ALTER TABLE public.c DROP CONSTRAINT \"c_t_fkey\"",
                "ALTER TABLE public.c ADD CONSTRAINT \"c_t_fkey\" FOREIGN KEY (t_id) REFERENCES public.t(id) NOT VALID",
            ]
        );
        assert_eq!(validate_constraint(&q("public.c"), "c_t_fkey"), "ALTER TABLE public.c VALIDATE CONSTRAINT \"c_t_fkey\"");
        assert!(FOREIGN_KEYS_TO_VALIDATE.ends_with("AND contype = 'f' AND NOT convalidated"));
    }

    #[test]
    fn policies_triggers_security_and_comments() {
        let d = Deps {
            owner: Some(q("\"App\"")),
            comment: Some("it's t".into()),
            row_security: true,
            force_row_security: true,
            replica_identity: "f".into(),
            policies: vec![q("CREATE POLICY p ON \"public\".\"t\" AS PERMISSIVE FOR ALL TO PUBLIC USING ((id > 0))")],
            triggers: vec![
                Trigger {
                    name: "audit".into(),
                    def: q("CREATE TRIGGER audit AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f()"),
                    enabled: "O".into(),
                },
                Trigger {
                    name: "off".into(),
                    def: q("CREATE TRIGGER off BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.g()"),
                    enabled: "D".into(),
                },
                Trigger {
                    name: "rep".into(),
                    def: q("CREATE TRIGGER rep AFTER DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION public.h()"),
                    enabled: "R".into(),
                },
                Trigger {
                    name: "all".into(),
                    def: q("CREATE TRIGGER \"all\" AFTER DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION public.h()"),
                    enabled: "A".into(),
                },
            ],
            policy_comments: vec![("p".into(), "policy".into())],
            trigger_comments: vec![("audit".into(), "trigger".into())],
            ..Deps::default()
        };
        let s = swap(&plain(), &d);
        assert_eq!(
            s[10..],
            [
                "ALTER TABLE \"public\".\"t\" OWNER TO \"App\"",
                "CREATE TRIGGER audit AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f()",
                "CREATE TRIGGER off BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.g()",
                "ALTER TABLE \"public\".\"t\" DISABLE TRIGGER \"off\"",
                "CREATE TRIGGER rep AFTER DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION public.h()",
                "ALTER TABLE \"public\".\"t\" ENABLE REPLICA TRIGGER \"rep\"",
                "CREATE TRIGGER \"all\" AFTER DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION public.h()",
                "ALTER TABLE \"public\".\"t\" ENABLE ALWAYS TRIGGER \"all\"",
                "ALTER TABLE \"public\".\"t\" ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE \"public\".\"t\" FORCE ROW LEVEL SECURITY",
                "CREATE POLICY p ON \"public\".\"t\" AS PERMISSIVE FOR ALL TO PUBLIC USING ((id > 0))",
                "COMMENT ON POLICY \"p\" ON \"public\".\"t\" IS E'policy'",
                "COMMENT ON TRIGGER \"audit\" ON \"public\".\"t\" IS E'trigger'",
                "ALTER TABLE \"public\".\"t\" REPLICA IDENTITY FULL",
                "COMMENT ON TABLE \"public\".\"t\" IS E'it''s t'",
            ]
        );
        assert_eq!(replica_identity(&plain().names.table, "n").unwrap(), "ALTER TABLE \"public\".\"t\" REPLICA IDENTITY NOTHING");
        assert_eq!(replica_identity(&plain().names.table, "i"), None);
    }

    #[test]
    fn dependents_of_other_kinds_are_carried_over_in_order() {
        let d = Deps {
            functions: vec![q("CREATE OR REPLACE FUNCTION public.n()\n RETURNS bigint\n LANGUAGE sql\nBEGIN ATOMIC\n SELECT count(*) FROM public.t;\nEND")],
            rules: vec![q("CREATE RULE r AS ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);")],
            other_policies: vec![q("ALTER POLICY p ON public.o USING ((EXISTS ( SELECT 1 FROM public.t)))")],
            not_valid: vec![("ck".into(), q("CHECK ((v <> ''::text)) NOT VALID"))],
            constraint_comments: vec![("ck".into(), "checked later".into())],
            ..Deps::default()
        };
        assert_eq!(
            swap(&plain(), &d)[10..],
            [
                "CREATE OR REPLACE FUNCTION public.n()\n RETURNS bigint\n LANGUAGE sql\nBEGIN ATOMIC\n SELECT count(*) FROM public.t;\nEND",
                "CREATE OR REPLACE RULE r AS ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);",
                "ALTER POLICY p ON public.o USING ((EXISTS ( SELECT 1 FROM public.t)))",
                "ALTER TABLE \"public\".\"t\" ADD CONSTRAINT \"ck\" CHECK ((v <> ''::text)) NOT VALID",
                "COMMENT ON CONSTRAINT \"ck\" ON \"public\".\"t\" IS E'checked later'",
            ]
        );
    }

    #[test]
    fn sequences_follow_their_columns_and_identity_values_carry_over() {
        let plan = renaming();
        let d = Deps {
            owned_sequences: vec![(q("public.t_n_seq"), "n".into()), (q("public.gone_seq"), "dropped".into())],
            identity_sequences: vec![IdentitySequence {
                old: q("public.t_id_seq"),
                old_name: "t_id_seq".into(),
                new: q("public._t_new_id_seq"),
                grants: vec![(q("USAGE"), q("app WITH GRANT OPTION"))],
                comment: Some("ids".into()),
            }],
            ..Deps::default()
        };
        assert_eq!(
            swap(&plan, &d)[10..],
            [
                "ALTER SEQUENCE public.t_n_seq OWNED BY \"public\".\"t\".\"amount\"",
                "SELECT setval(E'public._t_new_id_seq', s.last_value, s.is_called) FROM public.t_id_seq s",
                "ALTER SEQUENCE public.t_id_seq RENAME TO \"_t_id_seq_old\"",
                "ALTER SEQUENCE public._t_new_id_seq RENAME TO \"t_id_seq\"",
                "GRANT USAGE ON SEQUENCE public.t_id_seq TO app WITH GRANT OPTION",
                "COMMENT ON SEQUENCE public.t_id_seq IS E'ids'",
            ]
        );
    }

    #[test]
    fn index_and_statistics_names_move_to_the_new_table() {
        let plan = renaming();
        let stats = |schema: &str, name: &str, key: &str, owner: &str| Statistics {
            schema: schema.into(),
            name: name.into(),
            key: key.into(),
            target: -1,
            comment: None,
            owner: q(owner),
        };
        let d = Deps {
            old_indexes: vec![
                ("t_pkey".into(), "u btree (id)".into()),
                ("t_n_idx".into(), "btree (n)".into()),
                ("t_gone".into(), "btree (lower(n))".into()),
            ],
            new_indexes: vec![
                ("_t_new_pkey".into(), "u btree (id)".into()),
                ("_t_new_amount_idx".into(), "btree (amount)".into()),
            ],
            old_statistics: vec![Statistics {
                target: 50,
                comment: Some("s".into()),
                ..stats("public", "t_st", "{d} n, id", "o")
            }],
            new_statistics: vec![stats("other", "_t_new_n_id_stat", "{d} amount, id", "x")],
            index_roles: vec![("t_n_idx".into(), true, true), ("t_gone".into(), true, false)],
            index_column_targets: vec![("t_pkey".into(), 1, 200), ("t_gone".into(), 1, 10)],
            ..Deps::default()
        };
        assert_eq!(
            swap(&plan, &d)[10..],
            [
                "ALTER INDEX \"public\".\"t_pkey\" RENAME TO \"_t_pkey_old\"",
                "ALTER INDEX \"public\".\"t_n_idx\" RENAME TO \"_t_n_idx_old\"",
                "ALTER INDEX \"public\".\"_t_new_pkey\" RENAME TO \"t_pkey\"",
                "ALTER INDEX \"public\".\"_t_new_amount_idx\" RENAME TO \"t_n_idx\"",
                "ALTER STATISTICS \"public\".\"t_st\" RENAME TO \"_t_st_old\"",
                "ALTER STATISTICS \"other\".\"_t_new_n_id_stat\" RENAME TO \"t_st\"",
                "ALTER STATISTICS \"other\".\"t_st\" SET SCHEMA \"public\"",
                "ALTER STATISTICS \"public\".\"t_st\" OWNER TO o",
                "ALTER STATISTICS \"public\".\"t_st\" SET STATISTICS 50",
                "COMMENT ON STATISTICS \"public\".\"t_st\" IS E's'",
                // Only for indexes the new table has under the original's name.
                "ALTER TABLE \"public\".\"t\" REPLICA IDENTITY USING INDEX \"t_n_idx\"",
                "ALTER TABLE \"public\".\"t\" CLUSTER ON \"t_n_idx\"",
                "ALTER INDEX \"public\".\"t_pkey\" ALTER COLUMN 1 SET STATISTICS 200",
            ]
        );
        assert_eq!(column_renames(&plan), [("amount", "n")]);
        assert_eq!(old_name("t_pkey"), "_t_pkey_old");
        assert_eq!(old_name(&"x".repeat(63)).len(), 63);
    }

    #[test]
    fn after_the_swap() {
        assert_eq!(refresh_subscription("s\"1"), "ALTER SUBSCRIPTION \"s\"\"1\" REFRESH PUBLICATION WITH (copy_data = false)");
    }
}
