using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Switch.Grpc.Client;

/// <summary>Client limits and transport settings; every limit explicit.</summary>
public sealed class GrpcChannelOptions
{
    /// <summary>Largest response message accepted; a bigger frame fails the call with RESOURCE_EXHAUSTED before it is buffered.</summary>
    public int MaxReceiveMessageBytes { get; init; } = GrpcProtocol.DefaultMaxReceiveMessageBytes;

    /// <summary>Largest request message sent; a bigger one fails with RESOURCE_EXHAUSTED without being sent.</summary>
    public int MaxSendMessageBytes { get; init; } = int.MaxValue;

    /// <summary>A request stream writer flushes on its own once this many bytes are buffered.</summary>
    public int MaxBufferedWriteBytes { get; init; } = GrpcProtocol.DefaultMaxBufferedWriteBytes;

    /// <summary>Open more HTTP/2 connections when the server's max-concurrent-streams is reached (else calls queue).</summary>
    public bool EnableMultipleHttp2Connections { get; init; } = true;

    /// <summary>Per-stream HTTP/2 receive window the client advertises.</summary>
    public int InitialStreamWindowBytes { get; init; } = 768 * 1024;

    /// <summary>
    /// Send request messages in gzip (grpc-encoding: gzip). Off by default (small messages barely shrink and each costs a
    /// zlib state). Gzip responses are always accepted: every call lists "identity,gzip" in grpc-accept-encoding.
    /// </summary>
    public bool CompressRequests { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>TLS only: decides whether to trust the server certificate (e.g. pin a self-signed one). Null: the system's validation.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    /// <summary>TLS only: the certificate (with its private key) presented when the server asks for one (mutual TLS).</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(MaxReceiveMessageBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxSendMessageBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBufferedWriteBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(InitialStreamWindowBytes, 65535);
        if (ClientCertificate is { HasPrivateKey: false })
            throw new ArgumentException("the client certificate has no private key", nameof(ClientCertificate));
    }
}
