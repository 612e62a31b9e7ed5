using System.Buffers;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Client;

/// <summary>The frame of a single-request call: its size checked against the limit, written plain or gzip.</summary>
internal static class UnaryRequestContent<T> where T : IMessage<T>
{
    /// <summary>The message's size, refused (RESOURCE_EXHAUSTED, nothing sent) over the limit.</summary>
    internal static int MessageBytes(T message, int maxSendMessageBytes)
    {
        int messageBytes = message.CalculateSize();
        if (messageBytes > maxSendMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({messageBytes} vs. {maxSendMessageBytes})");
        return messageBytes;
    }

    /// <summary>The whole compressed frame (its length is known only after deflating).</summary>
    internal static ReadOnlyMemory<byte> GzipFrame(T message, int messageBytes, int maxSendMessageBytes)
    {
        var frame = new ArrayBufferWriter<byte>(GrpcFrame.HeaderBytes + messageBytes + 64);
        GzipMessages.Write(frame, message, maxSendMessageBytes);
        return frame.WrittenMemory;
    }

    /// <summary>The uncompressed frame, into exactly <see cref="GrpcFrame.HeaderBytes"/> + <paramref name="messageBytes"/> bytes.</summary>
    internal static void WritePlainFrame(T message, int messageBytes, Span<byte> frame)
    {
        GrpcFrame.WriteHeader(frame, messageBytes);
        message.WriteTo(frame.Slice(GrpcFrame.HeaderBytes, messageBytes));
    }

}
