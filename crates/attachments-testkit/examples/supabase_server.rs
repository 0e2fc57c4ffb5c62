//! Run the loopback Supabase Storage server until killed, and print the settings that point
//! `examples/supabase.rs` (or any client) at it: its project mode can then be tried without a
//! Supabase project.
//!
//! `cargo run -p attachments-testkit --features supabase-server --example supabase_server`

use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};

#[tokio::main]
async fn main() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    println!("# a service-role key (also the bearer token):");
    println!("SUPABASE_URL={}", server.base_url());
    println!("SUPABASE_BUCKET=attachments");
    println!("SUPABASE_KEY={}", server.token("service_role"));
    println!("# or the signed-in user alice (valid for an hour), under row-level security:");
    println!("SUPABASE_KEY=local-anon-key");
    println!("SUPABASE_ACCESS_TOKEN={}", server.user_token("alice"));
    println!("SUPABASE_KEY_PREFIX=alice/");
    // the server runs on this runtime's tasks: keep them alive until the process is killed
    std::future::pending::<()>().await;
}
