//! Comparing snapshots of a table value by value, naming the row and the column of every
//! difference.

use std::fmt::Debug;

/// Compare two snapshots value by value: rows `(id, values)`, the same ids in the same order,
/// then every value, named by `columns`; the message names the row and the column of every
/// difference.
pub fn assert_same_rows<K: PartialEq + Debug, V: PartialEq + Debug>(
    columns: &[&str],
    before: &[(K, Vec<V>)],
    after: &[(K, Vec<V>)],
) {
    fn ids<K, V>(s: &[(K, Vec<V>)]) -> Vec<&K> {
        s.iter().map(|(id, _)| id).collect()
    }
    assert_eq!(ids(before), ids(after), "row ids differ");
    let mut diffs = Vec::new();
    for ((id, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(b.len(), columns.len());
        for ((name, vb), va) in columns.iter().zip(b).zip(a) {
            if vb != va {
                diffs.push(format!("row {id:?}, {name}: before {vb:?}, after {va:?}"));
            }
        }
    }
    assert!(diffs.is_empty(), "{} values differ:\n{}", diffs.len(), diffs.join("\n"));
}
