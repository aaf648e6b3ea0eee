//! wslink-smol: the smol/async-io adapter of wslink, which will drive
//! `wslink_core` over async-io sockets with futures-rustls (see issue 5 and
//! `DESIGN.md`). It holds no code yet, so that nothing here pretends to work.
#![forbid(unsafe_code)]
