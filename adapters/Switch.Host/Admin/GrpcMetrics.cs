using Prometheus;
using Switch.Grpc;

namespace Switch.Host.Admin;

/// <summary>gRPC calls by the status they ended with, per port; each child resolved once (an array index per call).</summary>
public sealed class GrpcMetrics
{
    private readonly Counter.Child[] _byCode;

    public GrpcMetrics(Counter calls, string port)
    {
        StatusCode[] codes = Enum.GetValues<StatusCode>();
        _byCode = new Counter.Child[(int)codes.Max() + 1];
        foreach (StatusCode code in codes) _byCode[(int)code] = calls.WithLabels(port, AdminWebServer.CodeName(code));
    }

    public static Counter Family(IMetricFactory factory) =>
        factory.CreateCounter("switch_grpc_calls_total", "gRPC calls served, by port (institution, admin) and the status they ended with.", ["port", "code"]);

    public void Completed(StatusCode code)
    {
        if ((uint)code < (uint)_byCode.Length) _byCode[(int)code].Inc();
    }
}
