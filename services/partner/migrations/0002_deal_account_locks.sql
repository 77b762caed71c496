-- A row per account key that an open registration has claimed: KeyedId of
-- the normalised domain (scope "deal-domain") or name ("deal-name"). A
-- registration, filed or imported, locks its account's rows before it reads
-- the account's earlier claims, all callers in the same order, so that two
-- registrations of one account racing each other are checked one after the
-- other and the second finds the first (mysql_partner_store.cc,
-- LockDealAccounts). The rows hold nothing else; a key that is never claimed
-- again only takes its 26 bytes.

CREATE TABLE IF NOT EXISTS deal_account_locks (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=ascii;
