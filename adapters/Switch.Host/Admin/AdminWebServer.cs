using System.Net;
using System.Text;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Tls;

namespace Switch.Host.Admin;

/// <summary>
/// The admin port over HTTP/1.1: the dashboard (embedded assets, "/" = index.html), the JSON API
/// (POST /api/v1/{Method}, proto JSON in and out, the operator key in the x-operator-key header, errors as
/// {"code","message"} with a fitting HTTP status), /metrics (Prometheus text), and the probes /healthz (the process
/// answers) and /readyz (200 only while the switch serves), which need no key. Minimal request handling on Kestrel:
/// one terminal delegate, no MVC, no routing middleware. It listens before the journal is recovered; until
/// <see cref="Serve"/> the API and /metrics answer 503. On a standby the API answers 503 NOT_PRIMARY naming the
/// primary's admin HTTP address (body and x-switch-primary-admin header); /metrics and the probes stay up.
/// </summary>
public sealed class AdminWebServer : IAsyncDisposable
{
    public const string ApiPrefix = "/api/v1/";
    /// <summary>A JSON request is a few hundred bytes; anything near this is refused.</summary>
    public const int MaxJsonRequestBytes = 64 * 1024;
    private static readonly JsonFormatter Formatter = JsonFormatter.Default;

    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";

    private readonly WebApplication _app;
    private readonly NodeHealth _health;
    private readonly NodeRole _role;
    private readonly DashboardAssets _assets;
    private volatile Served? _served;

    /// <summary>What needs the running engine.</summary>
    private sealed record Served(AdminService Service, MetricsWriter Metrics);

    private AdminWebServer(WebApplication app, NodeHealth health, NodeRole role, DashboardAssets assets)
    {
        _app = app;
        _health = health;
        _role = role;
        _assets = assets;
    }

    /// <summary>Serves the JSON API and /metrics from now on (the engine runs).</summary>
    public void Serve(AdminService service, MetricsWriter metrics) => _served = new Served(service, metrics);

    /// <summary>The bound address (the real port when 0 was asked for).</summary>
    public Uri Address { get; private set; } = null!;

    /// <param name="tls">Null serves cleartext HTTP/1.1; otherwise HTTPS (ALPN http/1.1).</param>
    public static async Task<AdminWebServer> StartAsync(IPAddress address, int port, ServerTlsOptions? tls, NodeHealth health, NodeRole role,
        DashboardAssets assets)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = MaxJsonRequestBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            kestrel.Listen(address, port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                if (tls is not null) listen.UseTls(tls);
            });
        });
        WebApplication app = builder.Build();
        var server = new AdminWebServer(app, health, role, assets);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("admin: Kestrel reported no bound address");
        server.Address = new Uri(bound);
        return server;
    }

    private async Task HandleAsync(HttpContext http)
    {
        HttpResponse response = http.Response;
        response.Headers["X-Content-Type-Options"] = "nosniff";
        response.Headers.CacheControl = "no-store";
        string path = http.Request.Path.Value ?? "/";
        Served? served = _served;
        if (path.StartsWith(ApiPrefix, StringComparison.Ordinal))
        {
            RoleState role = _role.Current;
            if (served is null) await ErrorAsync(http, StatusCodes.Status503ServiceUnavailable, "UNAVAILABLE", $"UNAVAILABLE: the switch is {_health.StateName}");
            else if (!role.IsPrimary) await NotPrimaryAsync(http, role);
            else await ApiAsync(http, served.Service, path[ApiPrefix.Length..]);
            return;
        }
        if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "GET, HEAD";
            return;
        }
        if (path is LivenessPath or ReadinessPath)
        {
            // Liveness: this answer is the proof. Readiness: only while the engine runs and the switch serves.
            bool ok = path == LivenessPath || _health.Serving;
            response.StatusCode = ok ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            response.ContentType = "text/plain; charset=utf-8";
            if (HttpMethods.IsGet(http.Request.Method))
                await response.WriteAsync(path == LivenessPath ? "alive\n" : _health.StateName + "\n", http.RequestAborted);
            return;
        }
        if (path == "/metrics")
        {
            if (served is null)
            {
                response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }
            response.ContentType = MetricsWriter.ContentType;
            if (HttpMethods.IsGet(http.Request.Method)) await served.Metrics.WriteAsync(response.Body, http.RequestAborted);
            return;
        }
        if (_assets.Find(path) is not { } asset)
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            response.ContentType = "text/plain; charset=utf-8";
            await response.WriteAsync($"not found: {path}\n", http.RequestAborted);
            return;
        }
        response.ContentType = asset.ContentType;
        response.ContentLength = asset.Bytes.Length;
        if (HttpMethods.IsGet(http.Request.Method)) await response.Body.WriteAsync(asset.Bytes, http.RequestAborted);
    }

    private static async Task ApiAsync(HttpContext http, AdminService service, string method)
    {
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.Headers.Allow = "POST";
            await ErrorAsync(http, StatusCodes.Status405MethodNotAllowed, "INVALID_ARGUMENT", $"{ApiPrefix}{method}: use POST with the request as JSON");
            return;
        }
        if (!service.JsonMethods.TryGetValue(method, out JsonMethod? target))
        {
            await ErrorAsync(http, StatusCodes.Status404NotFound, "UNIMPLEMENTED",
                $"no method '{method}' in the JSON API (streaming methods are on gRPC only); methods: {string.Join(", ", service.JsonMethods.Keys)}");
            return;
        }
        try
        {
            AuthenticatedOperator op = service.Authenticator.Authenticate(http.Request.Headers[AdminMethods.OperatorKeyHeader].ToString());
            string body;
            try
            {
                using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
                body = await reader.ReadToEndAsync(http.RequestAborted);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
            {
                throw new RpcException(StatusCode.InvalidArgument, $"request body: {e.Message} (at most {MaxJsonRequestBytes} bytes)");
            }
            IMessage request;
            try
            {
                request = target.Parse(body.Length == 0 ? "{}" : body);
            }
            catch (Exception e) when (e is InvalidJsonException or InvalidProtocolBufferException or FormatException)
            {
                throw new RpcException(StatusCode.InvalidArgument, $"request body: not a {target.RequestType} in proto JSON: {e.Message}");
            }
            IMessage reply = await target.Invoke(request, op, http.RequestAborted);
            http.Response.ContentType = "application/json; charset=utf-8";
            await http.Response.WriteAsync(Formatter.Format(reply), http.RequestAborted);
        }
        catch (RpcException e)
        {
            await ErrorAsync(http, HttpStatusOf(e.StatusCode), CodeName(e.StatusCode), e.Status.Detail);
        }
    }

    private static Task ErrorAsync(HttpContext http, int status, string code, string message) =>
        JsonErrorAsync(http, status, new Dictionary<string, string> { ["code"] = code, ["message"] = message });

    /// <summary>503 {"code":"UNAVAILABLE","message":"NOT_PRIMARY: ...","primary":ADDRESS} and the header naming the primary
    /// (both left out when the primary is unknown).</summary>
    private static Task NotPrimaryAsync(HttpContext http, RoleState role)
    {
        var body = new Dictionary<string, string> { ["code"] = CodeName(StatusCode.Unavailable), ["message"] = role.RefusalMessage(RolePort.AdminHttp) };
        if (role.PrimaryFor(RolePort.AdminHttp) is { } primary)
        {
            body["primary"] = RoleState.Address(primary);
            http.Response.Headers[RoleState.PrimaryAdminTrailer] = body["primary"];
        }
        return JsonErrorAsync(http, StatusCodes.Status503ServiceUnavailable, body);
    }

    private static async Task JsonErrorAsync(HttpContext http, int status, Dictionary<string, string> body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await http.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(body), http.RequestAborted);
    }

    /// <summary>The gRPC status as the HTTP status a JSON client expects (the usual gRPC-to-HTTP mapping).</summary>
    public static int HttpStatusOf(StatusCode code) => code switch
    {
        StatusCode.OK => 200,
        StatusCode.Cancelled => 499,
        StatusCode.InvalidArgument or StatusCode.OutOfRange or StatusCode.FailedPrecondition => 400,
        StatusCode.Unauthenticated => 401,
        StatusCode.PermissionDenied => 403,
        StatusCode.NotFound => 404,
        StatusCode.AlreadyExists or StatusCode.Aborted => 409,
        StatusCode.ResourceExhausted => 429,
        StatusCode.Unimplemented => 501,
        StatusCode.Unavailable => 503,
        StatusCode.DeadlineExceeded => 504,
        _ => 500,
    };

    /// <summary>"INVALID_ARGUMENT" for StatusCode.InvalidArgument, as gRPC names its codes.</summary>
    public static string CodeName(StatusCode code) => StatusNames.Of(code);

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { await _app.StopAsync(timeout.Token); }
        finally
        {
            await _app.DisposeAsync();
            _served?.Metrics.Dispose();
        }
    }
}
