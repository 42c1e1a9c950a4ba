//! The object server's control frames (length + postcard body) as a server
//! reads them from a client connection, and as a client reads the answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use object_server::proto as wire;

/// Read frames until the stream ends or is refused, as the server loop does;
/// every accepted message re-encodes to a frame that reads back to a message
/// with the same encoding.
fn read_all<T>(mut stream: &[u8])
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de>,
{
    while let Ok(Some(msg)) = wire::read_frame::<T>(&mut stream) {
        let mut frame = Vec::new();
        wire::write_frame(&mut frame, &msg).expect("an accepted message encodes");
        let back: T = wire::read_frame(&mut &frame[..])
            .expect("a written frame reads")
            .expect("a written frame is not empty");
        let mut again = Vec::new();
        wire::write_frame(&mut again, &back).expect("encodes");
        assert_eq!(again, frame);
    }
}

fuzz_target!(|data: &[u8]| {
    read_all::<wire::Request>(data);
    read_all::<wire::Response>(data);
});
