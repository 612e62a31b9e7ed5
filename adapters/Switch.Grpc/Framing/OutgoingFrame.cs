using System.Buffers;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>One message's frame, written into a stream's buffer by either side of a call: a message object, or a
/// caller's own encoding (<see cref="IMessageEncoder"/>). Structs, so a write through a generic method boxes nothing.</summary>
internal interface IOutgoingFrame
{
    /// <summary>Frames the message (compressed when <paramref name="gzip"/>); returns the bytes written, header included.</summary>
    int Write(IBufferWriter<byte> output, int maxMessageBytes, bool gzip);
}

internal readonly struct MessageFrame<T>(T message) : IOutgoingFrame where T : IMessage<T>
{
    public int Write(IBufferWriter<byte> output, int maxMessageBytes, bool gzip) => gzip
        ? GzipMessages.Write(output, message, maxMessageBytes)
        : GrpcFrame.Write(output, message, maxMessageBytes);
}

internal struct EncodedFrame<TEncoder>(TEncoder encoder) : IOutgoingFrame where TEncoder : struct, IMessageEncoder
{
    private TEncoder _encoder = encoder;

    public int Write(IBufferWriter<byte> output, int maxMessageBytes, bool gzip) => gzip
        ? GzipMessages.WriteEncoded(output, ref _encoder, maxMessageBytes)
        : GrpcFrame.WriteEncoded(output, ref _encoder, maxMessageBytes);
}
