//! wslink-tokio: the tokio adapter of wslink, which will drive
//! `wslink_core` over tokio TCP and rustls TLS sockets (see issue 4 and
//! `DESIGN.md`). It holds no code yet, so that nothing here pretends to work.
#![forbid(unsafe_code)]
