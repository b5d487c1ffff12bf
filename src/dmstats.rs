//! The dm-stats wire protocol, pure, in bytes ([`Text`]): `@stats_list` replies
//! (`list`), the `DMS_GROUP` descriptor a group's leader keeps in its
//! aux_data (`descriptor`), the messages we send and their escaping
//! (`message`), `@stats_print` replies and the leader probe (`print`), the
//! latency histogram bounds (`bounds`), and the [`Device`] every message
//! goes through. No I/O here: everything is fuzzed or tabled.
//!
//! Two sources of ambiguity shape this layer, and both are resolved the
//! way the kernel and libdm resolve them:
//!
//! - The kernel prints aux_data raw, so an aux_data that holds spaces (sent
//!   escaped) is indistinguishable from the optional trailing
//!   ` precise_timestamps` and ` histogram:` tokens. Those two are read from
//!   the end of the line, because the kernel always prints them last; an
//!   aux_data that itself ends in such a token is read as the flag. Whatever
//!   [`parse_list`] returns prints back, through [`Region::to_line`], to a
//!   line that parses to the same region.
//! - The kernel's argument splitter ends a token at every byte its
//!   Latin-1 ctype table calls a space (`\t \n \v \f \r`, the space and
//!   0xA0, which is also inside `à`, `Р` and many CJK ideographs in UTF-8).
//!   Messages are bytes ([`Text`]), so every such byte gets its backslash,
//!   inside a character too, and the kernel stores the bytes whole. Only a
//!   NUL cannot be sent (a message is a C string): refused with
//!   [`MessageError`] rather than sent and silently cut.

pub(crate) mod bounds;
mod descriptor;
mod device;
mod list;
mod message;
mod print;
#[cfg(test)]
mod tests;
mod text;

pub use descriptor::*;
pub use device::*;
pub use list::*;
pub use message::*;
pub(crate) use print::*;
pub use text::Text;
