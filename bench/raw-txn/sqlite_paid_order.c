/* The raw paid-order transaction on SQLite (bench/raw-txn/run compiles and
 * runs it; it is not part of the CMake build).
 *
 *   sqlite_paid_order DB_FILE SECONDS THREADS SELLERS [inline|background]
 *
 * DB_FILE must hold bench/raw-txn/schema.sql and the sellers' listings
 * (lst_0 .. lst_<2*SELLERS-1>). Each thread opens its own connection as
 * Agora does (WAL, synchronous=NORMAL, foreign_keys=ON, busy timeout 5 s)
 * and loops for SECONDS: BEGIN IMMEDIATE; the stock of two listings (one
 * UPDATE); the order; two items; three ledger entries; one outbox row;
 * COMMIT. With more than one thread they take the write lock in turn
 * through a process mutex (SQLite has one writer; its busy handler would
 * otherwise sleep 1 ms and more per collision), so the figure is the
 * single-writer ceiling.
 *
 * Checkpoints: "inline" (the default, and what Agora does today) leaves
 * SQLite's auto-checkpoint on, so the connection whose COMMIT pushes the WAL
 * past 1,000 pages copies it back into the database file and fdatasyncs it
 * before COMMIT returns. "background" turns auto-checkpoint off on the
 * writers and runs PASSIVE checkpoints from a thread of their own every
 * 50 ms, so no commit waits for the disk: with synchronous=NORMAL a WAL
 * commit itself never syncs.
 *
 * Prints "<transactions> <seconds> <checkpoints>" on stdout.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *db_file;
static double seconds;
static int sellers;
static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_flag;
static int background;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "sqlite_paid_order: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) die(db, sql);
  return s;
}

static void step(sqlite3 *db, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) die(db, what);
  sqlite3_reset(s);
}

struct worker {
  int index;
  long done;
};

static void *run(void *arg) {
  struct worker *w = arg;
  sqlite3 *db;
  if (sqlite3_open_v2(db_file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) die(db, "open");
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", NULL, NULL,
                   NULL) != SQLITE_OK)
    die(db, "pragmas");
  if (background && sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) != SQLITE_OK) die(db, "pragma");
  sqlite3_stmt *begin = prep(db, "BEGIN IMMEDIATE");
  sqlite3_stmt *commit = prep(db, "COMMIT");
  sqlite3_stmt *stock = prep(db,
                             "UPDATE listings SET quantity = quantity - 1, version = version + 1, updated_at_ms = ?3 "
                             "WHERE id IN (?1, ?2)");
  sqlite3_stmt *order = prep(db,
                             "INSERT INTO orders (id, checkout_id, buyer_id, seller_id, status, currency, subtotal, "
                             "commission_bps, created_at_ms, updated_at_ms, paid_at_ms) "
                             "VALUES (?1, ?2, ?3, ?4, 'paid', 'EUR', 3998, 1000, ?5, ?5, ?5)");
  sqlite3_stmt *item = prep(db,
                            "INSERT INTO order_items (order_id, listing_id, title, unit_price, quantity, category_id) "
                            "VALUES (?1, ?2, ?3, 1999, 1, 'cat_bench')");
  sqlite3_stmt *entry = prep(db,
                             "INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                             "VALUES (?1, ?2, ?3, ?4, 'EUR')");
  sqlite3_stmt *outbox = prep(db,
                              "INSERT INTO outbox_events (id, type, source, payload, occurred_at_ms) "
                              "VALUES (?1, 'order.paid', 'orders', ?2, ?3)");
  char oid[64], cid[64], buyer[32], seller[32], la[32], lb[32], ltx[64], escrow[80], eid[64], payload[256];
  unsigned rng = 0x9e3779b9u * (unsigned)(w->index + 1);
  const sqlite3_int64 now_ms = 1790000000000LL;
  snprintf(buyer, sizeof buyer, "usr_b%d", w->index);
  while (!stop_flag) {
    rng = rng * 1664525u + 1013904223u;
    int s = (int)((rng >> 8) % (unsigned)sellers);
    long n = w->done;
    snprintf(oid, sizeof oid, "ord_%d_%ld", w->index, n);
    snprintf(cid, sizeof cid, "chk_%d_%ld", w->index, n);
    snprintf(ltx, sizeof ltx, "ltx_%d_%ld", w->index, n);
    snprintf(eid, sizeof eid, "evt_%d_%ld", w->index, n);
    snprintf(escrow, sizeof escrow, "escrow:%s", oid);
    snprintf(seller, sizeof seller, "usr_s%d", s);
    snprintf(la, sizeof la, "lst_%d", 2 * s);
    snprintf(lb, sizeof lb, "lst_%d", 2 * s + 1);
    snprintf(payload, sizeof payload, "{\"order_id\":\"%s\",\"seller_id\":\"%s\",\"amount\":3998,\"currency\":\"EUR\"}",
             oid, seller);

    pthread_mutex_lock(&writer);
    step(db, begin, "begin");
    sqlite3_bind_text(stock, 1, la, -1, SQLITE_STATIC);
    sqlite3_bind_text(stock, 2, lb, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stock, 3, now_ms);
    step(db, stock, "stock");
    if (sqlite3_changes(db) != 2) die(db, "stock: two listings expected");
    sqlite3_bind_text(order, 1, oid, -1, SQLITE_STATIC);
    sqlite3_bind_text(order, 2, cid, -1, SQLITE_STATIC);
    sqlite3_bind_text(order, 3, buyer, -1, SQLITE_STATIC);
    sqlite3_bind_text(order, 4, seller, -1, SQLITE_STATIC);
    sqlite3_bind_int64(order, 5, now_ms);
    step(db, order, "order");
    const char *listing[2] = {la, lb}, *title[2] = {"Bench item A", "Bench item B"};
    for (int i = 0; i < 2; i++) {
      sqlite3_bind_text(item, 1, oid, -1, SQLITE_STATIC);
      sqlite3_bind_text(item, 2, listing[i], -1, SQLITE_STATIC);
      sqlite3_bind_text(item, 3, title[i], -1, SQLITE_STATIC);
      step(db, item, "item");
    }
    const char *account[3] = {"buyer_payments", escrow, "commission"};
    const sqlite3_int64 amount[3] = {-3998, 3599, 399};
    for (int i = 0; i < 3; i++) {
      sqlite3_bind_text(entry, 1, ltx, -1, SQLITE_STATIC);
      sqlite3_bind_int(entry, 2, i);
      sqlite3_bind_text(entry, 3, account[i], -1, SQLITE_STATIC);
      sqlite3_bind_int64(entry, 4, amount[i]);
      step(db, entry, "ledger entry");
    }
    sqlite3_bind_text(outbox, 1, eid, -1, SQLITE_STATIC);
    sqlite3_bind_text(outbox, 2, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(outbox, 3, now_ms);
    step(db, outbox, "outbox");
    step(db, commit, "commit");
    pthread_mutex_unlock(&writer);
    w->done++;
  }
  sqlite3_stmt *all[] = {begin, commit, stock, order, item, entry, outbox};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sqlite3_finalize(all[i]);
  sqlite3_close(db);
  return NULL;
}

static long checkpoints;

static void *checkpointer(void *arg) {
  (void)arg;
  sqlite3 *db;
  if (sqlite3_open_v2(db_file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) die(db, "open");
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) die(db, "pragma");
  struct timespec nap = {0, 50 * 1000 * 1000};
  while (!stop_flag) {
    nanosleep(&nap, NULL);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) die(db, "checkpoint");
    checkpoints++;
  }
  sqlite3_close(db);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: %s DB_FILE SECONDS THREADS SELLERS [inline|background]\n", argv[0]);
    return 2;
  }
  background = argc == 6 && strcmp(argv[5], "background") == 0;
  db_file = argv[1];
  seconds = atof(argv[2]);
  int threads = atoi(argv[3]);
  sellers = atoi(argv[4]);
  if (seconds <= 0 || seconds > 600 || threads < 1 || threads > 64 || sellers < 1) {
    fprintf(stderr, "sqlite_paid_order: bad arguments\n");
    return 2;
  }
  pthread_t tid[64];
  struct worker w[64];
  pthread_t ckpt;
  if (background) pthread_create(&ckpt, NULL, checkpointer, NULL);
  double start = now_s();
  for (int i = 0; i < threads; i++) {
    w[i].index = i;
    w[i].done = 0;
    pthread_create(&tid[i], NULL, run, &w[i]);
  }
  struct timespec nap = {0, 20 * 1000 * 1000};
  while (now_s() - start < seconds) nanosleep(&nap, NULL);
  stop_flag = 1;
  long total = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    total += w[i].done;
  }
  double elapsed = now_s() - start;
  if (background) pthread_join(ckpt, NULL);
  printf("%ld %.3f %ld\n", total, elapsed, checkpoints);
  return 0;
}
