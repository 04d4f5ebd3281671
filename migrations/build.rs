// Re-embed the migrations when a SQL file is added or changed (sqlx::migrate! reads them at
// compile time, and cargo does not watch that folder by itself).
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
