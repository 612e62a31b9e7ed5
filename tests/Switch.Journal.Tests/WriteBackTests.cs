namespace Switch.Journal.Tests;

/// <summary>A buffered file made durable a chunk at a time (<see cref="WriteBack"/>): every byte's range written back, no
/// chunk larger than the limit, the file's contents untouched, a missing file an error.</summary>
public sealed class WriteBackTests : IDisposable
{
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_file_is_written_back_in_chunks_covering_every_byte_then_kept_whole()
    {
        string path = Path.Combine(_dir.Path, "records.bin");
        var bytes = new byte[WriteBack.ChunkBytes * 5 + 12_345];
        new Random(13).NextBytes(bytes);
        // Written by another handle that stays open, as the clearing recorder's file is while a snapshot syncs it.
        using (var writer = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            writer.Write(bytes);
            writer.Flush();
            var told = new List<long>();
            WriteBack.SyncFile(path, told.Add);
            if (OperatingSystem.IsLinux())
            {
                Assert.Equal(6, told.Count);
                Assert.All(told, chunk => Assert.InRange(chunk, 1, WriteBack.ChunkBytes));
                Assert.Equal(bytes.Length, told.Sum());
            }
        }
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void An_empty_file_has_no_chunk_and_a_missing_one_is_an_error()
    {
        string path = Path.Combine(_dir.Path, "empty.bin");
        File.WriteAllBytes(path, []);
        var told = new List<long>();
        WriteBack.SyncFile(path, told.Add);
        Assert.Empty(told);
        Assert.Throws<FileNotFoundException>(() => WriteBack.SyncFile(Path.Combine(_dir.Path, "missing.bin")));
    }
}
