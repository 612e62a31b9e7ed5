using System.Security.Cryptography;
using System.Text;
using Switch.Journal;

namespace Switch.Clearing;

/// <summary>
/// Writes one clearing file atomically: header, data lines, then the trailer with the body's SHA-256, into a
/// temporary file in the same directory, flushed to disk, then renamed over the final name. A crash leaves either
/// the old file, the new one, or a stray temporary, never a half file under the final name.
/// </summary>
public sealed class AtomicCsvWriter : IDisposable
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private readonly string _path;
    private readonly string _tempPath;
    private readonly FileStream _file;
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _completed;

    public AtomicCsvWriter(string path, IReadOnlyList<string> header)
    {
        if (header.Count == 0 || header[0] != "H") throw new ArgumentException("a clearing file starts with an H line");
        _path = path;
        _tempPath = path + ".tmp";
        _file = new FileStream(_tempPath, FileMode.Create, FileAccess.Write, FileShare.Read, 64 * 1024);
        _file.Write(Utf8.GetBytes(ClearingCsv.Join(header)));
    }

    public long DataLines { get; private set; }

    public void Data(IReadOnlyList<string> fields)
    {
        if (fields[0] != "D") throw new ArgumentException("a data line starts with D");
        Data(Utf8.GetBytes(ClearingCsv.Join(fields)));
    }

    /// <summary>A data line already formatted, its '\n' included.</summary>
    public void Data(ReadOnlySpan<byte> line)
    {
        if (line.Length < 3 || line[0] != (byte)'D' || line[1] != (byte)',' || line[^1] != (byte)'\n') throw new ArgumentException("a data line is 'D,...\\n'");
        _sha.AppendData(line);
        _file.Write(line);
        DataLines++;
    }

    /// <summary>Appends the trailer (its fields, then the body hash), syncs, and renames into place.</summary>
    public void Complete(IReadOnlyList<string> trailerWithoutHash)
    {
        var trailer = new List<string>(trailerWithoutHash) { Convert.ToHexStringLower(_sha.GetHashAndReset()) };
        if (trailer[0] != "T") throw new ArgumentException("a trailer starts with T");
        _file.Write(Utf8.GetBytes(ClearingCsv.Join(trailer)));
        _file.Flush(flushToDisk: true);
        _file.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        _completed = true;
        DirectorySync.Flush(Path.GetDirectoryName(Path.GetFullPath(_path))!);
    }

    public void Dispose()
    {
        _file.Dispose();
        _sha.Dispose();
        if (!_completed)
        {
            File.Delete(_tempPath);
        }
    }
}
