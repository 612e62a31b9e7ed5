using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// Reads framed messages from a PipeReader as they arrive: a frame split across reads waits for the rest,
/// many frames in one read are returned one by one without another read. Not thread-safe: one reader at a time.
/// </summary>
public sealed class GrpcMessageReader<T> where T : class, IMessage<T>
{
    private readonly PipeReader _input;
    private readonly MessageParser<T> _parser;
    private readonly int _maxMessageBytes;
    private bool _ended;

    public GrpcMessageReader(PipeReader input, MessageParser<T> parser, int maxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageBytes);
        _input = input;
        _parser = parser;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Reads frames from a Stream (wrapped in a PipeReader that leaves the stream open).</summary>
    public static GrpcMessageReader<T> FromStream(Stream stream, MessageParser<T> parser, int maxMessageBytes) =>
        new(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)), parser, maxMessageBytes);

    /// <summary>True once the end of the stream was reached cleanly.</summary>
    public bool IsEnded => _ended;

    /// <summary>
    /// The next message, or null at a clean end of stream.
    /// </summary>
    /// <exception cref="RpcException">INTERNAL on a truncated frame, compressed frame or unparsable message; RESOURCE_EXHAUSTED on an oversize frame.</exception>
    public async ValueTask<T?> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_ended) return null;
        while (true)
        {
            ReadResult result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled) throw new OperationCanceledException("Read was canceled.");
            ReadOnlySequence<byte> buffer = result.Buffer;
            bool framed;
            ReadOnlySequence<byte> payload;
            try
            {
                framed = GrpcFrame.TryRead(ref buffer, _maxMessageBytes, out payload);
            }
            catch
            {
                _input.AdvanceTo(result.Buffer.Start); // Leave the reader consistent; the stream is dead to us anyway.
                throw;
            }

            if (framed)
            {
                T message;
                try
                {
                    message = _parser.ParseFrom(payload);
                }
                catch (InvalidProtocolBufferException e)
                {
                    _input.AdvanceTo(buffer.Start);
                    throw new RpcException(StatusCode.Internal, "Failed to deserialize message: " + e.Message);
                }
                _input.AdvanceTo(buffer.Start);
                return message;
            }

            if (result.IsCompleted)
            {
                long left = buffer.Length;
                _input.AdvanceTo(buffer.End);
                if (left != 0)
                    throw new RpcException(StatusCode.Internal, $"Stream ended inside a message frame ({left} bytes left over).");
                _ended = true;
                return null;
            }
            // Incomplete frame: consume nothing, but tell the pipe we've seen everything so it waits for more.
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>All remaining messages, as they arrive.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await ReadAsync(cancellationToken).ConfigureAwait(false) is { } message)
            yield return message;
    }
}
