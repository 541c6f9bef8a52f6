//! Regenerate EcoFormer's PVTv2 table (six models, one image each) and print it as Markdown:
//! `cargo run --release --example ecoformer_pvtv2 [SCENARIO]`.

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "scenarios/paper-ecoformer-pvtv2.ron".into());
    let t0 = std::time::Instant::now();
    match picojoule::reproduce::ecoformer::ecoformer_pvtv2_table(std::path::Path::new(&path)) {
        Ok(t) => {
            print!("{}", t.markdown());
            eprintln!("scenario ran in {:.1} s", t0.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code() as i32);
        }
    }
}
