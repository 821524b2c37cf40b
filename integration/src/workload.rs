//! placeholder, see the workload brief
