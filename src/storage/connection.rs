//! A transaction on a pooled connection of its own, for either backend. It begins and
//! commits with the statements it is given; one that does not end in a successful commit
//! closes its connection instead of returning it to the pool (the database rolls back on
//! close), so no later request can get a connection left inside a failed transaction —
//! after a full disk, for instance, where a queued rollback can itself fail.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, Pool};

use super::StorageError;

pub(super) struct OwnedTransaction<DB: Database> {
    connection: PoolConnection<DB>,
    committed: bool,
}

impl<DB: Database> OwnedTransaction<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// `begin` is the backend's statement: `BEGIN IMMEDIATE`, an isolation level, …
    pub async fn begin(pool: &Pool<DB>, begin: &'static str) -> Result<Self, StorageError> {
        let mut tx = Self {
            connection: pool.acquire().await?,
            committed: false,
        };
        sqlx::raw_sql(begin).execute(tx.connection()).await?;
        Ok(tx)
    }

    pub fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    pub async fn commit(mut self) -> Result<(), StorageError> {
        sqlx::raw_sql("COMMIT").execute(self.connection()).await?;
        self.committed = true;
        Ok(())
    }
}

impl<DB: Database> Drop for OwnedTransaction<DB> {
    fn drop(&mut self) {
        if !self.committed {
            self.connection.close_on_drop();
        }
    }
}
