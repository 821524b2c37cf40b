//! Everything in the catalog that is bound to the table's OID (or to its row type, or to its
//! identity sequences) and that the swap carries over to the new table: [`Deps`], read by
//! [`read_deps`] inside the swap transaction, under its lock and before the renames. What the
//! swap does with each is [`crate::sql::cutover::swap`]; the kinds it cannot carry over are
//! refused by the preflight ([`crate::preflight`], [`crate::sql::preflight::UNHANDLED_DEPENDENTS`]).
//!
//! Views, foreign keys from other tables, grants, policies, comments, sequences and triggers
//! bind to a table's OID, not its name: after `ALTER TABLE … RENAME` they follow the old table.
//! Definitions are read with `search_path = pg_catalog` (the swap transaction sets it), so
//! `pg_get_viewdef` and friends print schema-qualified names that resolve to the new table once
//! it has the old name.
//! The server docs each behaviour comes from are named in [`crate::sql::deps`].

use shadowswap_engine::plan::Plan;
use shadowswap_engine::Result;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use crate::connect::text_params;
use crate::errors;
use crate::sql::capture::capture_triggers;
use crate::sql::deps as q;
use crate::sql::{Qualified, ServerQuoted};

/// A view that uses the table: re-created (`CREATE OR REPLACE VIEW`), then its options set again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `CREATE OR REPLACE VIEW <view> AS <definition>`, as the server wrote it.
    pub create: ServerQuoted,
    /// The view's name.
    pub name: ServerQuoted,
    /// Its `reloptions` (`name=value` each).
    pub options: Vec<String>,
}

/// A foreign key of another table that references the table: re-added `NOT VALID` pointing at
/// the new table, validated after the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyIn {
    /// The constraint's name.
    pub name: String,
    /// The referencing table.
    pub child: ServerQuoted,
    /// Its definition (`pg_get_constraintdef`).
    pub def: ServerQuoted,
}

/// A trigger of the user's own on the table: re-created on the new table in its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The trigger's name.
    pub name: String,
    /// `CREATE TRIGGER …` (`pg_get_triggerdef`).
    pub def: ServerQuoted,
    /// `tgenabled`: `O` (origin), `D` (disabled), `R` (replica), `A` (always).
    pub enabled: String,
}

/// An identity column's sequence: the new table's takes the old one's name, last value, grants
/// and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySequence {
    /// The original's sequence, as `pg_get_serial_sequence` prints it.
    pub old: ServerQuoted,
    /// The original's sequence's bare name, unquoted (`pg_class.relname`): the new sequence takes
    /// it, the old one moves aside under `_<name>_old`.
    pub old_name: String,
    /// The shadow's sequence, likewise.
    pub new: ServerQuoted,
    /// `(privilege, grantee)` of each grant to a role other than the owner; the grantee with
    /// ` WITH GRANT OPTION` when held so.
    pub grants: Vec<(ServerQuoted, ServerQuoted)>,
    /// Its comment.
    pub comment: Option<String>,
}

/// An extended statistics object of the original or of the shadow (which `LIKE` gave copies
/// under generated names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `stxkind` and columns: what an original and its copy are matched by.
    pub key: String,
    /// Statistics target (< 0: default).
    pub target: i32,
    /// Comment.
    pub comment: Option<String>,
    /// Owner.
    pub owner: ServerQuoted,
}

/// Everything the swap re-applies once the new table has the name, as read from the catalog
/// (see the module docs). Plain data: [`crate::sql::cutover::swap`] turns it into statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// The table's owner.
    pub owner: Option<ServerQuoted>,
    /// The table's comment.
    pub comment: Option<String>,
    /// `ENABLE ROW LEVEL SECURITY`.
    pub row_security: bool,
    /// `FORCE ROW LEVEL SECURITY`.
    pub force_row_security: bool,
    /// `relreplident`: `d` default, `n` nothing, `f` full, `i` an index ([`Deps::index_roles`]).
    pub replica_identity: String,
    /// `CREATE POLICY …` for each policy of the table.
    pub policies: Vec<ServerQuoted>,
    /// Views that use the table.
    pub views: Vec<View>,
    /// Foreign keys of other tables to the table.
    pub foreign_keys_in: Vec<ForeignKeyIn>,
    /// The user's triggers on the table (not the capture's).
    pub triggers: Vec<Trigger>,
    /// `(sequence, column)`: sequences owned by a column (`serial`).
    pub owned_sequences: Vec<(ServerQuoted, String)>,
    /// Identity sequences of columns that are identity columns of the shadow too.
    pub identity_sequences: Vec<IdentitySequence>,
    /// `(name, definition key)` of the original's indexes.
    pub old_indexes: Vec<(String, String)>,
    /// `(name, definition key)` of the shadow's indexes.
    pub new_indexes: Vec<(String, String)>,
    /// Definitions of functions with SQL-standard bodies that use the table.
    pub functions: Vec<ServerQuoted>,
    /// Definitions (`CREATE RULE …`) of other tables' rules that use the table.
    pub rules: Vec<ServerQuoted>,
    /// `ALTER POLICY …` for other tables' policies that use the table.
    pub other_policies: Vec<ServerQuoted>,
    /// `(name, definition)` of the table's `NOT VALID` constraints, left off the shadow.
    pub not_valid: Vec<(String, ServerQuoted)>,
    /// `(constraint, comment)` of constraint comments the new table lacks.
    pub constraint_comments: Vec<(String, String)>,
    /// The original's statistics objects.
    pub old_statistics: Vec<Statistics>,
    /// The shadow's statistics objects.
    pub new_statistics: Vec<Statistics>,
    /// `(index, replica identity, clustered)` of the original's indexes that are either.
    pub index_roles: Vec<(String, bool, bool)>,
    /// `(index, column position, statistics target)` of the original's index columns with a
    /// statistics target.
    pub index_column_targets: Vec<(String, i16, i32)>,
    /// `(policy, comment)` of the table's own policies.
    pub policy_comments: Vec<(String, String)>,
    /// `(trigger, comment)` of the table's own triggers.
    pub trigger_comments: Vec<(String, String)>,
}

/// Reads [`Deps`] for `plan` in the swap transaction `tx` (under its `ACCESS EXCLUSIVE` locks,
/// with `search_path = pg_catalog`, before the renames). Errors: [`shadowswap_engine::Error::Database`].
pub async fn read_deps(tx: &Transaction<'_>, plan: &Plan) -> Result<Deps> {
    let ctx = "reading what depends on the table";
    let e = |e| errors::db(ctx, e);
    let t = Qualified(&plan.names.table).to_string();
    let s = Qualified(&plan.names.shadow).to_string();
    let ours: Vec<String> = capture_triggers(&plan.names).into();
    // The reads whose one parameter is the table, each in one round trip (the table is locked).
    let of_table = |query: &'static str| {
        let t = t.clone();
        async move { tx.query_typed(query, &text_params(&[&t])).await.map_err(|e| errors::db(ctx, e)) }
    };
    let facts = tx.query_typed_one(q::TABLE_FACTS, &text_params(&[&t])).await.map_err(e)?;
    let policies = of_table(q::POLICIES).await?.iter().map(|r| r.get(0)).collect();
    let views = of_table(q::VIEWS).await?.iter().map(|r| View { create: r.get(0), name: r.get(1), options: r.get(2) }).collect();
    let foreign_keys_in = of_table(q::INCOMING_FOREIGN_KEYS)
        .await?
        .iter()
        .map(|r| ForeignKeyIn { name: r.get(0), child: r.get(1), def: r.get(2) })
        .collect();
    let triggers = tx
        .query_typed(q::TRIGGERS, &[(&t, Type::TEXT), (&ours, Type::TEXT_ARRAY)])
        .await
        .map_err(e)?
        .iter()
        .map(|r| Trigger { name: r.get(0), def: r.get(1), enabled: r.get(2) })
        .collect();
    let owned_sequences = of_table(q::OWNED_SEQUENCES).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let identity: Vec<(ServerQuoted, String, ServerQuoted)> = tx
        .query_typed(q::IDENTITY_SEQUENCES, &text_params(&[&t, &s]))
        .await
        .map_err(e)?
        .iter()
        .filter_map(|r| {
            Some((r.get::<_, Option<ServerQuoted>>(0)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<ServerQuoted>>(1)?))
        })
        .collect();
    let indexes = |rel: String| async move {
        let rows = tx.query_typed(q::INDEX_DEFINITIONS, &text_params(&[&rel])).await.map_err(|e| errors::db(ctx, e))?;
        Ok::<_, shadowswap_engine::Error>(rows.iter().map(|r| (r.get(0), r.get(1))).collect::<Vec<(String, String)>>())
    };
    let old_indexes = indexes(t.clone()).await?;
    let new_indexes = indexes(s.clone()).await?;
    let definitions = |query: &'static str| async move {
        Ok::<_, shadowswap_engine::Error>(of_table(query).await?.iter().map(|r| r.get(0)).collect::<Vec<ServerQuoted>>())
    };
    let functions = definitions(q::SQL_BODY_FUNCTIONS).await?;
    let rules = definitions(q::RULES_OF_OTHER_TABLES).await?;
    let other_policies = definitions(q::POLICIES_OF_OTHER_TABLES).await?;
    let not_valid = of_table(q::NOT_VALID_CONSTRAINTS).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let constraint_comments = tx
        .query_typed(q::CONSTRAINT_COMMENTS, &text_params(&[&t, &s]))
        .await
        .map_err(e)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let statistics = |rel: String| async move {
        let rows = tx.query_typed(q::STATISTICS_OBJECTS, &text_params(&[&rel])).await.map_err(|e| errors::db(ctx, e))?;
        let read = |r: &tokio_postgres::Row| Statistics {
            schema: r.get(0),
            name: r.get(1),
            key: r.get(2),
            target: r.get(3),
            comment: r.get(4),
            owner: r.get(5),
        };
        Ok::<_, shadowswap_engine::Error>(rows.iter().map(read).collect::<Vec<Statistics>>())
    };
    let old_statistics = statistics(t.clone()).await?;
    let new_statistics = statistics(s.clone()).await?;
    let index_roles = of_table(q::INDEX_ROLES).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let index_column_targets = of_table(q::INDEX_COLUMN_TARGETS).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let (mut policy_comments, mut trigger_comments) = (Vec::new(), Vec::new());
    for r in of_table(q::OWN_COMMENTS).await? {
        let (kind, name, comment): (&str, String, String) = (r.get(0), r.get(1), r.get(2));
        match kind {
            "t" => trigger_comments.push((name, comment)),
            _ => policy_comments.push((name, comment)),
        }
    }
    let mut identity_sequences = Vec::new();
    for (old, old_name, new) in identity {
        let grants = tx
            .query_typed(q::SEQUENCE_GRANTS, &text_params(&[&old.as_str()]))
            .await
            .map_err(|e| errors::db("reading the identity sequences' grants", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let comment = tx
            .query_typed_one(q::SEQUENCE_COMMENT, &text_params(&[&old.as_str()]))
            .await
            .map_err(|e| errors::db("reading the identity sequences' comments", e))?
            .get(0);
        identity_sequences.push(IdentitySequence { old, old_name, new, grants, comment });
    }
    Ok(Deps {
        owner: facts.get(0),
        comment: facts.get(1),
        row_security: facts.get(2),
        force_row_security: facts.get(3),
        replica_identity: facts.get(4),
        policies,
        views,
        foreign_keys_in,
        triggers,
        owned_sequences,
        identity_sequences,
        old_indexes,
        new_indexes,
        functions,
        rules,
        other_policies,
        not_valid,
        constraint_comments,
        old_statistics,
        new_statistics,
        index_roles,
        index_column_targets,
        policy_comments,
        trigger_comments,
    })
}
