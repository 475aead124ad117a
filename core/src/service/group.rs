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
//! Each member gets what it would have got alone. A one-event call whose
//! event conflicts has stored nothing of it (the conflict is found before
//! anything is written) and is answered in place, its conflict audited
//! there. A batch call with a conflicting item has already written its
//! earlier items, and an overflowing balance is found after its event's
//! insert: such a call is taken out and the group's transaction run again
//! without it. Nothing of it is stored, the others commit, and a conflict
//! is audited in that same transaction, at its place. A storage failure fails every member of the
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
    /// The member runs in every run of the group: the outcome of the
    /// latest, its results or its refusal. Only a one-event call's conflict
    /// is answered in place (found before anything of it is written;
    /// audited at its place).
    Going(Result<Vec<IngestResult>>),
    /// Item `index` of a batch call conflicts: the call stores nothing, its
    /// attempt is audited at its place, and `error` is what it conflicts
    /// with as of the run that commits.
    Conflicted { index: usize, error: ConflictError },
    /// An item is invalid (a balance would overflow): the call stores nothing.
    Refused(Error),
}

impl Member<'_> {
    /// What the member's caller gets, once the group's transaction ended
    /// with `outcome`.
    fn answer(self, outcome: &Result<()>) -> Result<Vec<IngestResult>> {
        match (self.fate, outcome) {
            (Fate::Refused(e), _) => Err(e),
            (_, Err(e)) => Err(e.clone()),
            (Fate::Going(answer), Ok(())) => answer,
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
        let answer = check_keys(items, batch).and_then(|()| self.join(items, ctx, batch));
        let duration_us = started.elapsed().as_micros() as u64;
        match &answer {
            Ok(results) => log_results(&self.metrics, ctx, results.iter().map(Ok), duration_us),
            Err(e) => log_results(&self.metrics, ctx, std::iter::once(Err(e)), duration_us),
        }
        answer
    }

    /// Leads a group at once on an idle ledger; otherwise queues and waits
    /// for an answer, or for the lead of a later group.
    fn join(
        &self,
        items: &[NewEvent],
        ctx: &IngestContext,
        batch: bool,
    ) -> Result<Vec<IngestResult>> {
        let group = &self.group;
        let mut queue = lock(&group.queue);
        if !queue.leading {
            queue.leading = true;
            drop(queue);
            return self.lead(items, ctx, batch, false);
        }
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
                fate: Fate::Going(Ok(Vec::with_capacity(items.len()))),
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

    /// Writes the members' items in one transaction. A batch call refused
    /// (conflict or invalid) is taken out and the transaction run again.
    fn write_group(&self, members: &mut [Member<'_>]) -> Result<()> {
        loop {
            let mut refused: Option<(usize, usize, Error)> = None;
            let events = members
                .iter()
                .filter(|m| matches!(m.fate, Fate::Going(_)))
                .map(|m| m.items.len())
                .sum();
            let outcome = self.write(events, &mut |tx| {
                refused = None;
                let mut step = Step::start(&self.chain, tx)?;
                for (m, member) in members.iter_mut().enumerate() {
                    let (items, ctx) = (member.items, member.ctx);
                    match &mut member.fate {
                        Fate::Refused(_) => {}
                        Fate::Conflicted { index, error } => {
                            if let Some(now) = step.audit_conflict(tx, ctx, &items[*index])? {
                                *error = now;
                            }
                        }
                        Fate::Going(answer) => {
                            let alone = items.len() == 1;
                            let mut results = Vec::with_capacity(items.len());
                            *answer = Ok(Vec::new());
                            for (i, item) in items.iter().enumerate() {
                                match step.one(tx, ctx, item, false) {
                                    Ok(r) => results.push(r),
                                    // A conflict is found before anything of its
                                    // event is written: a one-event call has
                                    // stored nothing.
                                    Err(e @ Error::Conflict(_)) if alone => {
                                        step.audit_conflict(tx, ctx, item)?;
                                        *answer = Err(if member.batch { e.at_index(i) } else { e });
                                    }
                                    // A batch call's earlier items are written, and
                                    // an overflow is found after its event's insert:
                                    // roll back, then run again without the call.
                                    Err(e @ (Error::Conflict(_) | Error::Validation(_))) => {
                                        refused = Some((m, i, e.clone()));
                                        return Err(e);
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                            if let Ok(kept) = answer {
                                *kept = results;
                            }
                        }
                    }
                }
                step.write_rollups(tx)
            });
            // A refusal counts only if it is what ended the write (an
            // engine may have run the closure again, or failed after it).
            let refusal = refused
                .filter(|_| matches!(outcome, Err(Error::Conflict(_) | Error::Validation(_))));
            let Some((m, index, error)) = refusal else {
                return outcome;
            };
            let member = &mut members[m];
            member.fate = match error {
                Error::Conflict(error) => Fate::Conflicted { index, error },
                e => Fate::Refused(e.at_index(index)),
            };
        }
    }
}

/// A keyless event is refused before it queues: it needs no storage.
fn check_keys(items: &[NewEvent], batch: bool) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        item.check_keys().map_err(|e| {
            let e = Error::from(e);
            if batch {
                e.at_index(i)
            } else {
                e
            }
        })?;
    }
    Ok(())
}
