using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

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

/// <summary>Kestrel listen options from <see cref="ServerTlsOptions"/>.</summary>
public static class ServerTls
{
    /// <summary>TLS 1.2 or 1.3 on the endpoint; ALPN offers the endpoint's protocols (h2 for gRPC, http/1.1 for the web port).</summary>
    public static ListenOptions UseTls(this ListenOptions listen, ServerTlsOptions tls)
    {
        tls.Validate();
        return listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = tls.Certificate,
            ServerCertificateChain = tls.Chain,
            SslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
            CheckCertificateRevocation = false, // TrustedRoots' rule: no revocation fetches (see there)
            ClientCertificateMode = tls.ClientCertificates switch
            {
                ClientCertificates.Optional => ClientCertificateMode.AllowCertificate,
                ClientCertificates.Required => ClientCertificateMode.RequireCertificate,
                _ => ClientCertificateMode.NoCertificate,
            },
            ClientCertificateValidation = tls.ClientCertificateValidation is { } validate
                ? (certificate, chain, _) => validate(certificate, chain) // the system's verdict is replaced, not combined
                : null,
        });
    }
}
