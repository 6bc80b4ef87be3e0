using System.Diagnostics;

namespace ActorSim.Host.Tests;

/// <summary>Runs the built actorsim as a process, and finds the repository.</summary>
public static class Cli
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "actorsim.dll");

    public static string Repo
    {
        get
        {
            var dir = AppContext.BaseDirectory;
            while (!File.Exists(Path.Combine(dir, "ActorSim.sln"))) dir = Path.GetDirectoryName(dir)!;
            return dir;
        }
    }

    /// <summary>Starts actorsim with its output redirected (for tests that read it as it comes).</summary>
    public static Process Start(IReadOnlyDictionary<string, string?>? env, params string[] args) => StartIn(env, null, args);

    /// <summary><see cref="Start"/> in <paramref name="cwd"/> (the tests' own directory when null); an
    /// <paramref name="env"/> value of null removes the variable.</summary>
    public static Process StartIn(IReadOnlyDictionary<string, string?>? env, string? cwd, params string[] args)
    {
        Assert.True(File.Exists(Dll), $"actorsim.dll not found next to the tests ({Dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (cwd is not null) psi.WorkingDirectory = cwd;
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    /// <summary>Runs actorsim to the end (3 minutes at most) and returns its exit code and output.</summary>
    public static (int Exit, string Out, string Err) Run(params string[] args) => RunIn(null, null, args);

    /// <summary><see cref="Run"/> with an environment and a current directory (<see cref="StartIn"/>).</summary>
    public static (int Exit, string Out, string Err) RunIn(IReadOnlyDictionary<string, string?>? env, string? cwd, params string[] args)
    {
        using var p = StartIn(env, cwd, args);
        return ToTheEnd(p, "actorsim");
    }

    /// <summary>Waits for <paramref name="p"/> (3 minutes at most, else killed) and returns its exit code
    /// and output.</summary>
    private static (int Exit, string Out, string Err) ToTheEnd(Process p, string what)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(180_000)) { p.Kill(true); throw new TimeoutException($"{what} did not exit within 3 minutes"); }
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs a bash <paramref name="script"/> in which <c>$ACTORSIM</c> runs the built actorsim
    /// (a function, so a path with spaces stays one word), for redirections and pipes a test cannot make
    /// with a Process's streams; its exit code and output.</summary>
    public static (int Exit, string Out, string Err) Sh(string script)
    {
        var psi = new ProcessStartInfo("bash", ["-c", $"actorsim() {{ dotnet \"$ACTORSIM_DLL\" \"$@\"; }}; ACTORSIM=actorsim; {script}"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ACTORSIM_DLL"] = Dll;
        using var p = Process.Start(psi)!;
        return ToTheEnd(p, "the script");
    }

    /// <summary>Every decision record in an exported event log, in file order: the one of a
    /// stage2_fault_resolved line and each of a stage2_faults_resolved (batch) line, as JSON.</summary>
    public static IEnumerable<System.Text.Json.JsonElement> Decisions(string file)
    {
        foreach (var l in File.ReadLines(file).Skip(1))
        {
            if (!l.Contains("\"type\":\"stage2_fault")) continue;
            using var e = System.Text.Json.JsonDocument.Parse(l);
            var data = e.RootElement.GetProperty("data");
            if (data.TryGetProperty("decision", out var one)) yield return one.Clone();
            else foreach (var d in data.GetProperty("decisions").EnumerateArray()) yield return d.Clone();
        }
    }

    /// <summary>A scenario file (in the temp directory) of <paramref name="pages"/> RAM writes, each with
    /// its expectation: ~1,000 steps a second on the local database, long enough to act on it midway.</summary>
    /// <summary>A FIFO named <paramref name="name"/> (mkfifo) in a new temporary directory: the directory
    /// and the FIFO. A FIFO stands for a pipe or a device given as a file.</summary>
    public static async Task<(string Dir, string Fifo)> FifoAsync(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"fifo-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var fifo = Path.Combine(dir, name);
        using (var mk = System.Diagnostics.Process.Start("mkfifo", fifo)) await mk.WaitForExitAsync();
        return (dir, fifo);
    }

    public static string LongScenario(int pages)
    {
        var file = Path.Combine(Path.GetTempPath(), $"long-{Guid.NewGuid():N}.yaml");
        File.WriteAllLines(file, [
            "name: long", "kernel: \"6.9\"", "vms:", "  - name: vm1", "    ram: { gpa: 0x40000000, size: 1GiB }", "steps:",
            .. Enumerable.Range(0, pages).SelectMany(i => new[]
            {
                $"  - access: {{ vm: vm1, vcpu: 0, gpa: 0x{0x40000000 + i * 4096L:x}, op: write, s1: Normal-WB }}",
                "  - expect: { access: last, result: mapped }",
            })]);
        return file;
    }
}
