import COnnxProto
import GraftCore

/// A C string from protobuf-c (nil for an absent optional field) as a Swift string.
func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
    p.map { String(cString: $0) } ?? ""
}

/// The elements of a protobuf-c repeated field (`n_x`, `x`) as a buffer.
func repeated<T>(_ count: Int, _ pointer: UnsafeMutablePointer<T>?) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: count > 0 ? pointer : nil, count: count)
}

/// Key/value pairs of a repeated `StringStringEntryProto`.
func entries(_ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?) -> [(String, String)] {
    repeated(count, pointer).compactMap { e in e.map { (string($0.pointee.key), string($0.pointee.value)) } }
}

/// Bytes of a protobuf-c `bytes` field as a string (ONNX string attributes are UTF-8 bytes).
func string(_ data: ProtobufCBinaryData) -> String {
    guard data.len > 0, let p = data.data else { return "" }
    return String(decoding: UnsafeBufferPointer(start: p, count: data.len), as: UTF8.self)
}
