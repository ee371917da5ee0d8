//! Process-wide tuning of glibc's allocator for CPU inference and training.
//!
//! candle's CPU backend allocates a fresh buffer for every op's output. With
//! glibc's defaults, buffers above the (dynamic, at most 32 MiB) mmap threshold
//! are `mmap`ed and `munmap`ed on every op, and the top of the heap is trimmed
//! back to the OS after frees, so each forward pays page faults on every large
//! activation again. Measured on the 2-core build VM (benches/RESULTS.md,
//! "Allocator"): 27% of the demo ViLT trainer's time was kernel time (sys)
//! spent on this, and ViLT-B/32 forward at batch 32 ran 23% faster once freed
//! memory was kept for reuse.
//!
//! [`keep_freed_memory_for_reuse`] turns that off for the whole process: no
//! mmap for large blocks, no trimming, heap grown in 256 MiB steps. The price is
//! that the resident memory stays at its peak until the process exits, which
//! is what a long explanation run or a training run wants. Binaries call it
//! first thing (the `multishap` CLI, the demo trainer, the benches); a library
//! never does it behind its user's back. Set `MULTISHAP_DEFAULT_MALLOC=1` to
//! keep glibc's defaults (for A/B measurements). A no-op on other platforms.

/// Environment variable that disables the tuning.
pub const DEFAULT_MALLOC_ENV: &str = "MULTISHAP_DEFAULT_MALLOC";

/// Whether the tuning was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocTuning {
    Applied,
    /// `MULTISHAP_DEFAULT_MALLOC` was set.
    DisabledByEnv,
    /// Not glibc (or glibc refused a setting).
    Unsupported,
}

/// Keep freed memory in the process for reuse (see the module docs).
pub fn keep_freed_memory_for_reuse() -> AllocTuning {
    if crate::env_switch(DEFAULT_MALLOC_ENV) {
        return AllocTuning::DisabledByEnv;
    }
    apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> AllocTuning {
    const TOP_PAD: libc::c_int = 256 << 20;
    // SAFETY: mallopt only changes allocator parameters; these three are valid
    // at any time (glibc applies them to later allocations and frees).
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
            && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
    };
    if ok {
        AllocTuning::Applied
    } else {
        AllocTuning::Unsupported
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> AllocTuning {
    AllocTuning::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_still_allocate_and_free_after_tuning() {
        let t = keep_freed_memory_for_reuse();
        if cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::env::var_os(DEFAULT_MALLOC_ENV).is_none()
        {
            assert_eq!(t, AllocTuning::Applied);
        }
        // Blocks above glibc's largest mmap threshold (32 MiB) now come from the heap.
        for round in 0..3u8 {
            let v = vec![round; 80 << 20];
            assert_eq!(v[v.len() - 1], round);
        }
    }
}
