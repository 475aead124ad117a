//! `walletlog history` and `walletlog balance`.

use clap::Args;
use walletlog::{json as wljson, RawListQuery, RawTime, Timestamp, WalletId};

use super::{command_words, event_cells, next_page_command, open, print_json, EVENT_HEADER};
use crate::{table, Global, Result};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    wallet: String,
    /// Events per page, 1..=1000.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Only these event types; repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only events with occurred_at >= this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events with occurred_at < this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this currency.
    #[arg(long)]
    currency: Option<String>,
    /// `desc` (newest first) or `asc`.
    #[arg(long, default_value = "desc")]
    order: String,
}

pub(super) fn history(g: &Global, a: &HistoryArgs) -> Result<u8> {
    let query = RawListQuery {
        wallet_id: a.wallet.clone(),
        limit: Some(a.limit),
        order: Some(a.order.clone()),
        event_types: (!a.types.is_empty()).then(|| a.types.clone()),
        since: a.since.clone().map(RawTime::Rfc3339),
        until: a.until.clone().map(RawTime::Rfc3339),
        currency: a.currency.clone(),
        cursor: a.cursor.clone(),
    }
    .validate()?;
    let ledger = open(g, false)?;
    let page = ledger.list(&query)?;
    if g.json {
        print_json(&wljson::page(&page));
        return Ok(0);
    }
    if page.events.is_empty() {
        println!("no events for wallet {}", a.wallet);
    } else {
        let rows: Vec<Vec<String>> = page.events.iter().map(event_cells).collect();
        table::print(&EVENT_HEADER, &rows, &["AMOUNT", "SEQ"]);
    }
    if let Some(cursor) = &page.next_cursor {
        println!("more: {}", next_page_command(g, &a.same_query(cursor)));
    }
    Ok(0)
}

impl HistoryArgs {
    /// The arguments that ask for the same query (a cursor belongs to
    /// one), from `cursor` on.
    fn same_query(&self, cursor: &str) -> Vec<String> {
        let limit = self.limit.to_string();
        let mut options = vec![
            ("limit", Some(limit.as_str())),
            ("order", Some(&self.order)),
        ];
        options.extend(self.types.iter().map(|t| ("type", Some(t.as_str()))));
        options.extend([
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
            ("currency", self.currency.as_deref()),
            ("cursor", Some(cursor)),
        ]);
        let mut args = command_words(&["history"], &options);
        // The wallet last, after `--`: a wallet id may start with `-`.
        args.extend(["--".to_owned(), self.wallet.clone()]);
        args
    }
}

pub(super) fn balance(g: &Global, wallet: &str, as_of: Option<&str>) -> Result<u8> {
    let wallet_id = WalletId::new(wallet)?;
    let as_of = as_of
        .map(|t| Timestamp::parse_rfc3339("as_of", t))
        .transpose()?;
    let ledger = open(g, false)?;
    let balances = ledger.balance(&wallet_id, as_of)?;
    if g.json {
        print_json(&wljson::balances(&balances));
        return Ok(0);
    }
    if balances.is_empty() {
        match as_of {
            Some(t) => println!("no events for wallet {wallet} that occurred by {t}"),
            None => println!("no events for wallet {wallet}"),
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = balances
        .iter()
        .map(|b| {
            vec![
                b.currency.to_string(),
                b.available.to_string(),
                b.held.to_string(),
                b.total.to_string(),
                b.event_count.to_string(),
                b.last_occurred_at.map_or("-".into(), |t| t.to_string()),
            ]
        })
        .collect();
    table::print(
        &[
            "CURRENCY",
            "AVAILABLE",
            "HELD",
            "TOTAL",
            "EVENTS",
            "LAST_OCCURRED_AT",
        ],
        &rows,
        &["AVAILABLE", "HELD", "TOTAL", "EVENTS"],
    );
    Ok(0)
}
