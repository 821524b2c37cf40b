//! Builders for the cut-over: the atomic swap (MariaDB KB "RENAME TABLE": several renames in one
//! statement are atomic). The checks around it read the table identity ([`super::identity`]).

use shadowswap_engine::plan::Plan;

use super::Qualified;

/// The atomic swap: `RENAME TABLE t TO _t_old, _t_new TO t`. The run waits for its metadata
/// locks under [`super::with_lock_timeout`]; the dry run prints it.
pub fn rename_swap(plan: &Plan) -> String {
    let n = &plan.names;
    format!("RENAME TABLE {} TO {}, {} TO {}", Qualified(&n.table), Qualified(&n.old), Qualified(&n.shadow), Qualified(&n.table))
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::enum_key_plan;
    use super::*;

    #[test]
    fn the_swap_renames_both_tables_in_one_statement() {
        assert_eq!(
            rename_swap(&enum_key_plan()),
            "RENAME TABLE `d``b`.`t x` TO `d``b`.`_t x_old`, `d``b`.`_t x_new` TO `d``b`.`t x`"
        );
    }
}
