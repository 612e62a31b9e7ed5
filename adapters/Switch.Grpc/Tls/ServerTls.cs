using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Switch.Grpc.Tls;

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
