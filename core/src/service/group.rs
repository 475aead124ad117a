//! Group commit: concurrent `ingest` and `ingest_batch` calls on one
//! service share one write transaction and one commit. The rules are in
//! `docs/events.md` ("Group commit").
//!
//! Leader and followers. A caller that finds no group in progress leads
//! at once, so a lone caller on an idle ledger waits for nothing. A caller
//! that finds one in progress queues its request and sleeps. When a group
//! has committed, its leader wakes the members with their results and hands
//! the lead to the oldest queued caller, which takes every queued request
//! that fits in [`GroupLimits::max_events`] (waiting up to
//! [`GroupLimits::max_wait`] for more) and writes them in one transaction.
//! Groups therefore grow exactly while commits are slow.
//!
//! Each member gets what it would have got alone. A member whose item is
//! refused (a conflict, an invalid event) is taken out and the group's
//! transaction is run again without it: nothing of it is stored, the
//! others commit, and a refused conflict is audited in that same
//! transaction, at its place. A storage failure fails every member of the
//! group, and nothing of theirs is stored.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::domain::{
    ConflictError, Error, IngestResult, NewEvent, Result, StorageError, StorageErrorKind,
};
use crate::limits::GroupLimits;
use crate::ports::Storage;

use super::ingest::{log_results, IngestContext, Step};
use super::Service;

/// The queue of callers waiting for the group in progress to commit.
pub(super) struct GroupCommit {
    limits: GroupLimits,
    queue: Mutex<Queue>,
    /// Signalled when a caller queues, for a leader waiting for more.
    arrived: Condvar,
}

#[derive(Default)]
struct Queue {
    /// A leader holds the lead: gathering, writing or handing over.
    leading: bool,
    waiting: VecDeque<Arc<Slot>>,
    /// How many callers the last group had: callers that come back for
    /// more are worth waiting for.
    last_members: usize,
}

/// A queued caller's request and, once its group is done, its answer.
struct Slot {
    items: Vec<NewEvent>,
    ctx: IngestContext,
    batch: bool,
    state: Mutex<SlotState>,
    wake: Condvar,
}

enum SlotState {
    Queued,
    /// The caller leads the next group.
    Lead,
    Done(Result<Vec<IngestResult>>),
}

impl Slot {
    fn settle(&self, state: SlotState) {
        *lock(&self.state) = state;
        self.wake.notify_one();
    }

    /// Sleeps until the caller leads or has its answer.
    fn wait(&self) -> SlotState {
        let mut state = lock(&self.state);
        loop {
            match std::mem::replace(&mut *state, SlotState::Queued) {
                SlotState::Queued => {
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                settled => return settled,
            }
        }
    }
}

/// One member of a group, and what became of it in the group's latest run.
struct Member<'a> {
    items: &'a [NewEvent],
    ctx: &'a IngestContext,
    batch: bool,
    fate: Fate,
}

enum Fate {
    /// Its items go in; the results of the latest run.
    Going(Vec<IngestResult>),
    /// Item `index` conflicts: the member stores nothing, and its attempt
    /// is audited at its place.
    Conflicted { index: usize, error: ConflictError },
    /// An item is invalid: the member stores nothing.
    Refused(Error),
}

impl Member<'_> {
    /// What the member's caller gets, once the group's transaction ended
    /// with `outcome`.
    fn answer(self, outcome: &Result<()>) -> Result<Vec<IngestResult>> {
        match (self.fate, outcome) {
            (Fate::Refused(e), _) => Err(e),
            (_, Err(e)) => Err(e.clone()),
            (Fate::Going(results), Ok(())) => Ok(results),
            (Fate::Conflicted { index, mut error }, Ok(())) => {
                error.index = self.batch.then_some(index);
                Err(Error::Conflict(error))
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking leader leaves the queue consistent (see `Handover`).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GroupCommit {
    pub(super) fn new(limits: GroupLimits) -> Self {
        GroupCommit {
            limits,
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
        }
    }

    /// Takes the queued requests that fit beside `own` events, oldest
    /// first. A leader that took over from a committing group (`busy`)
    /// waits, at most `max_wait`, until the group has as many callers as
    /// the last one had: callers that were answered a moment ago tend to
    /// come back with their next event.
    fn gather(&self, own: usize, busy: bool) -> Vec<Arc<Slot>> {
        let mut taken = Vec::new();
        let mut events = own;
        let deadline = Instant::now() + self.limits.max_wait;
        let mut queue = lock(&self.queue);
        loop {
            while let Some(next) = queue.waiting.front() {
                if events + next.items.len() > self.limits.max_events {
                    queue.last_members = taken.len() + 1;
                    return taken;
                }
                events += next.items.len();
                taken.extend(queue.waiting.pop_front());
            }
            let now = Instant::now();
            if !busy || now >= deadline || taken.len() + 1 >= queue.last_members {
                queue.last_members = taken.len() + 1;
                return taken;
            }
            queue = self
                .arrived
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Hands the lead on when a leader is done, also when it panicked: the
/// members it has not answered get an error, and the oldest queued caller
/// leads next (or the ledger is idle again).
struct Handover<'g> {
    group: &'g GroupCommit,
    members: Vec<Arc<Slot>>,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        for slot in self.members.drain(..) {
            slot.settle(SlotState::Done(Err(Error::Storage(StorageError::new(
                StorageErrorKind::Other,
                "the group this call was in failed before it committed; nothing of it was stored",
            )))));
        }
        let mut queue = lock(&self.group.queue);
        match queue.waiting.pop_front() {
            Some(next) => next.settle(SlotState::Lead),
            None => queue.leading = false,
        }
    }
}

impl<S: Storage> Service<S> {
    /// Ingests `items` all or nothing, in a group with whatever other
    /// calls are concurrent. `batch`: errors carry the item's index.
    pub(super) fn ingest_grouped(
        &self,
        items: &[NewEvent],
        ctx: &IngestContext,
        batch: bool,
    ) -> Result<Vec<IngestResult>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let group = &self.group;
        let mut queue = lock(&group.queue);
        let answer = if !queue.leading {
            queue.leading = true;
            drop(queue);
            self.lead(items, ctx, batch, false)
        } else {
            let slot = Arc::new(Slot {
                items: items.to_vec(),
                ctx: ctx.clone(),
                batch,
                state: Mutex::new(SlotState::Queued),
                wake: Condvar::new(),
            });
            queue.waiting.push_back(Arc::clone(&slot));
            drop(queue);
            group.arrived.notify_one();
            match slot.wait() {
                SlotState::Done(answer) => answer,
                _ => self.lead(&slot.items, &slot.ctx, slot.batch, true),
            }
        };
        let results: Vec<Result<IngestResult>> = match &answer {
            Ok(results) => results.iter().cloned().map(Ok).collect(),
            Err(e) => vec![Err(e.clone())],
        };
        log_results(ctx, &results, started.elapsed().as_micros() as u64);
        answer
    }

    /// Leads one group: the caller's own items and the queued requests
    /// that fit, written in one transaction; then hands the lead on.
    fn lead(
        &self,
        items: &[NewEvent],
        ctx: &IngestContext,
        batch: bool,
        busy: bool,
    ) -> Result<Vec<IngestResult>> {
        let followers = self.group.gather(items.len(), busy);
        let mut handover = Handover {
            group: &self.group,
            members: followers.clone(),
        };
        let mut members: Vec<Member<'_>> = std::iter::once((items, ctx, batch))
            .chain(
                followers
                    .iter()
                    .map(|s| (s.items.as_slice(), &s.ctx, s.batch)),
            )
            .map(|(items, ctx, batch)| Member {
                items,
                ctx,
                batch,
                fate: Fate::Going(Vec::with_capacity(items.len())),
            })
            .collect();
        let outcome = self.write_group(&mut members);
        let mut answers = members.into_iter().map(|m| m.answer(&outcome));
        let own = answers.next().expect("the leader is a member");
        for (slot, answer) in handover.members.drain(..).zip(answers) {
            slot.settle(SlotState::Done(answer));
        }
        own
    }

    /// Writes the members' items in one transaction. A member refused
    /// (conflict or invalid) is taken out and the transaction run again.
    fn write_group(&self, members: &mut [Member<'_>]) -> Result<()> {
        loop {
            let mut refused: Option<(usize, usize, Error)> = None;
            let outcome = self.storage.write(&mut |tx| {
                refused = None;
                let mut step = Step::start(&self.chain, tx, false)?;
                for (m, member) in members.iter_mut().enumerate() {
                    match &mut member.fate {
                        Fate::Refused(_) => {}
                        Fate::Conflicted { index, .. } => {
                            step.audit_conflict(tx, member.ctx, &member.items[*index])?
                        }
                        Fate::Going(results) => {
                            results.clear();
                            for (i, item) in member.items.iter().enumerate() {
                                match step.one(tx, member.ctx, item) {
                                    Ok(r) => results.push(r),
                                    Err(e @ (Error::Conflict(_) | Error::Validation(_))) => {
                                        // Roll back, then run again without this member.
                                        refused = Some((m, i, e.clone()));
                                        return Err(e);
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                    }
                }
                step.write_rollups(tx)
            });
            let Some((m, index, error)) = refused else {
                return outcome;
            };
            let member = &mut members[m];
            member.fate = match error {
                Error::Conflict(error) => Fate::Conflicted { index, error },
                e if member.batch => Fate::Refused(e.at_index(index)),
                e => Fate::Refused(e),
            };
        }
    }
}
