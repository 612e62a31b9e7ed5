using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// Reads framed messages from a PipeReader as they arrive and parses each into a <typeparamref name="T"/> (the frames
/// are taken by <see cref="GrpcFrameReader"/>). Not thread-safe: one reader at a time. Between calls it may hold the
/// last read's buffer un-advanced: nothing else may read the pipe meanwhile.
/// </summary>
public sealed class GrpcMessageReader<T> where T : class, IMessage<T>
{
    private readonly GrpcFrameReader _frames;
    private readonly MessageParser<T> _parser;
    /// <summary>T reads its frame's bytes itself (kept until the next read): no parse, no copy.</summary>
    private static readonly bool DecodesOwnBytes = typeof(IDecodesOwnBytes).IsAssignableFrom(typeof(T));

    /// <param name="gzip">The call's grpc-encoding is gzip: frames with the compressed flag are inflated (bounded by the
    /// same limit). Otherwise a compressed frame fails the call with INTERNAL.</param>
    /// <param name="malformedCode">The status of a message that does not parse: INTERNAL (the spec), or INVALID_ARGUMENT
    /// on a server that tells callers their request is wrong.</param>
    public GrpcMessageReader(PipeReader input, MessageParser<T> parser, int maxMessageBytes, bool gzip = false,
        StatusCode malformedCode = StatusCode.Internal)
    {
        ArgumentNullException.ThrowIfNull(parser);
        _frames = new GrpcFrameReader(input, maxMessageBytes, gzip, malformedCode);
        _parser = parser;
    }

    /// <summary>Reads frames from a Stream (wrapped in a PipeReader that leaves the stream open).</summary>
    public static GrpcMessageReader<T> FromStream(Stream stream, MessageParser<T> parser, int maxMessageBytes) =>
        new(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)), parser, maxMessageBytes);

    /// <summary>True once the end of the stream was reached cleanly.</summary>
    public bool IsEnded => _frames.IsEnded;

    /// <summary>
    /// The next message, or null at a clean end of stream (one that decodes its own bytes, <see cref="IDecodesOwnBytes"/>,
    /// may point into them until the next read). Frames already read are parsed from the held buffer
    /// without another read: the pipe is advanced once per read, not once per message (see <see cref="GrpcFrameReader"/>).
    /// </summary>
    /// <exception cref="RpcException">INTERNAL on a truncated frame, an unexpected compressed frame, bad gzip or an unparsable message; RESOURCE_EXHAUSTED on an oversize frame or one that inflates past the limit.</exception>
    public async ValueTask<T?> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (_frames.TryNext(out bool ended))
            {
                try
                {
                    return Decode(_frames.Message, _parser);
                }
                catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException)
                {
                    throw _frames.Refuse(e);
                }
            }
            if (ended) return null;
            _frames.Hold(await _frames.ReadAsync(cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>One message from its bytes (one that decodes its own bytes may keep a view of them: see
    /// <see cref="IDecodesOwnBytes"/>).</summary>
    /// <exception cref="InvalidProtocolBufferException">The bytes are not a <typeparamref name="T"/>.</exception>
    /// <exception cref="InvalidDataException">A shape a message that decodes its own bytes does not take.</exception>
    internal static T Decode(in ReadOnlySequence<byte> bytes, MessageParser<T> parser)
    {
        if (!DecodesOwnBytes) return parser.ParseFrom(bytes);
        T message = parser.ParseFrom(ReadOnlySpan<byte>.Empty); // the parser's new, empty message
        ((IDecodesOwnBytes)message).DecodeFrom(bytes);
        return message;
    }

    /// <summary>As <see cref="Decode"/>, for bytes given back once it returns: one that decodes its own bytes gets a copy
    /// of its own.</summary>
    internal static T DecodeDetached(in ReadOnlySequence<byte> bytes, MessageParser<T> parser) =>
        Decode(DecodesOwnBytes ? new ReadOnlySequence<byte>(bytes.ToArray()) : bytes, parser);

    /// <summary>All remaining messages, as they arrive.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await ReadAsync(cancellationToken).ConfigureAwait(false) is { } message)
            yield return message;
    }
}
