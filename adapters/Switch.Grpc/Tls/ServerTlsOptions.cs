using System.Security.Cryptography.X509Certificates;

namespace Switch.Grpc.Tls;

/// <summary>Whether a TLS listener asks the client for a certificate, and whether it insists.</summary>
public enum ClientCertificates
{
    /// <summary>No certificate is asked for.</summary>
    None,
    /// <summary>Asked for; a client without one is let in, one with a certificate that fails validation is not.</summary>
    Optional,
    /// <summary>A client without a certificate that passes validation is refused at the handshake.</summary>
    Required,
}

/// <summary>TLS for one listening endpoint: the server's certificate with its chain, and the client certificate rule.</summary>
public sealed class ServerTlsOptions
{
    /// <summary>The server's certificate, with its private key.</summary>
    public required X509Certificate2 Certificate { get; init; }

    /// <summary>Intermediate certificates sent after <see cref="Certificate"/> (may be empty).</summary>
    public X509Certificate2Collection Chain { get; init; } = [];

    public ClientCertificates ClientCertificates { get; init; } = ClientCertificates.None;

    /// <summary>
    /// Required unless <see cref="ClientCertificates"/> is None: decides at the handshake whether a presented client
    /// certificate is accepted (false ends the connection), given the intermediates the client sent.
    /// </summary>
    public Func<X509Certificate2, X509Chain?, bool>? ClientCertificateValidation { get; init; }

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Certificate);
        if (!Certificate.HasPrivateKey) throw new ArgumentException("the server certificate has no private key", nameof(Certificate));
        if (ClientCertificates != ClientCertificates.None && ClientCertificateValidation is null)
            throw new ArgumentException("client certificates need a validation", nameof(ClientCertificateValidation));
    }
}
