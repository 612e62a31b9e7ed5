namespace Switch.Grpc.Http2.Hpack;

/// <summary>Receives a decoded header block's fields, in order. The spans are valid only during the call: they point
/// into the block, the decoder's scratch buffer or its dynamic table, all reused by the next field.</summary>
public interface IHeaderSink
{
    void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);
}
