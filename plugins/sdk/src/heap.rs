//! The plugin's allocator: the free part of the initial linear memory
//! first, then the standard allocator.
//!
//! The host runs each webhook in a fresh instance. Rust's standard allocator
//! on `wasm32-unknown-unknown` (dlmalloc; 0.2.11 in Rust 1.95) never uses
//! the memory the module starts with: its first allocation grows the memory
//! by a page, so every call grew its instance, and the host then changed
//! the page protection twice (on the growth, and again to shrink the slot
//! back for the next instance), each change a TLB shootdown across the
//! host's cores. Here an allocation is served from `[__heap_base, end of
//! the initial memory)` while it fits (a bump pointer: the instance lives
//! for one call, so nothing needs to be given back, though the latest
//! allocation is freed and grown in place); what does not fit goes to the
//! standard allocator, which grows the memory as before. Should a later
//! std's allocator take blocks from the free part of the initial memory
//! itself (dlmalloc 0.2.13 can), the first such block traps the call (a
//! plugin failure) rather than give one byte two owners. A plugin built
//! with enough initial memory (`-C link-arg=--initial-memory=...`) never
//! grows on a typical call. Disable the SDK's default feature `allocator`
//! to use your own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const PAGE: usize = 64 << 10;

extern "C" {
    /// Where the linker put the end of the data and the shadow stack: the
    /// start of the free part of the initial memory.
    static __heap_base: u8;
}

pub struct InitialMemoryFirst {
    /// The next free byte of the arena; 0 before the first allocation.
    next: Cell<usize>,
    /// The end of the arena: the initial memory's size.
    end: Cell<usize>,
}

// A wasm32-unknown-unknown module has one thread: nothing is shared.
unsafe impl Sync for InitialMemoryFirst {}

impl InitialMemoryFirst {
    pub const fn new() -> Self {
        InitialMemoryFirst {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    fn arena(&self) -> (usize, usize) {
        if self.next.get() == 0 {
            // Before the first allocation nothing has grown the memory: its
            // size now is the initial size.
            self.next.set(core::ptr::addr_of!(__heap_base) as usize);
            self.end.set(core::arch::wasm32::memory_size(0) * PAGE);
        }
        (self.next.get(), self.end.get())
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        let base = core::ptr::addr_of!(__heap_base) as usize;
        p >= base && p < self.end.get()
    }

    /// `layout` from the arena, or `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let (next, end) = self.arena();
        let start = next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let stop = start.checked_add(layout.size())?;
        if stop > end {
            return None;
        }
        self.next.set(stop);
        Some(start as *mut u8)
    }
}

impl Default for InitialMemoryFirst {
    fn default() -> Self {
        Self::new()
    }
}

impl InitialMemoryFirst {
    /// `p`, a block of `size` bytes from the standard allocator, which must
    /// lie beyond the arena (std's dlmalloc grows the memory for it). One
    /// inside would share bytes with the arena: the call traps instead.
    fn beyond_arena(&self, p: *mut u8, size: usize) -> *mut u8 {
        let base = core::ptr::addr_of!(__heap_base) as usize;
        let start = p as usize;
        if !p.is_null() && start < self.end.get() && start.saturating_add(size) > base {
            core::arch::wasm32::unreachable();
        }
        p
    }
}

unsafe impl GlobalAlloc for InitialMemoryFirst {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            None => self.beyond_arena(unsafe { System.alloc(layout) }, layout.size()),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // Only the latest allocation is taken back; the rest goes with
            // the instance.
            if ptr as usize + layout.size() == self.next.get() {
                self.next.set(ptr as usize);
            }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            return self.beyond_arena(unsafe { System.realloc(ptr, layout, new_size) }, new_size);
        }
        let start = ptr as usize;
        let latest = start + layout.size() == self.next.get();
        if latest {
            if let Some(stop) = start.checked_add(new_size) {
                if stop <= self.end.get() {
                    self.next.set(stop);
                    return ptr;
                }
            }
        } else if new_size <= layout.size() {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}
