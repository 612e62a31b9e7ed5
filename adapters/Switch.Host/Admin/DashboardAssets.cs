using System.Reflection;

namespace Switch.Host.Admin;

/// <summary>One dashboard file, embedded in the assembly.</summary>
public sealed record DashboardAsset(string Name, string ContentType, byte[] Bytes);

/// <summary>
/// The dashboard's files (Admin/Dashboard/**), embedded as resources named "dashboard/&lt;relative path&gt;", read once
/// at start. "/" is index.html; anything not embedded is 404 (no file system access, so no path tricks).
/// </summary>
public sealed class DashboardAssets
{
    public const string ResourcePrefix = "dashboard/";
    private readonly Dictionary<string, DashboardAsset> _files = new(StringComparer.Ordinal);

    public DashboardAssets(Assembly assembly)
    {
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            string name = resource.Replace('\\', '/');
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using Stream stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            string relative = name[ResourcePrefix.Length..];
            _files["/" + relative] = new DashboardAsset(relative, ContentTypeOf(relative), copy.ToArray());
        }
    }

    public int Count => _files.Count;

    public DashboardAsset? Find(string path) => _files.GetValueOrDefault(path == "/" ? "/index.html" : path);

    public static string ContentTypeOf(string name) => Path.GetExtension(name).ToLowerInvariant() switch
    {
        ".html" or ".htm" => "text/html; charset=utf-8",
        ".js" or ".mjs" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".json" or ".map" => "application/json; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".woff2" => "font/woff2",
        ".woff" => "font/woff",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
}
