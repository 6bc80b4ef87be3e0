using System.Diagnostics;

namespace ActorSim.Host.Tests;

/// <summary>The built <c>actorsim</c> run as a process: exit codes and what it prints.</summary>
public class ActorsimProcessTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "actorsim.dll");
        Assert.True(File.Exists(dll), $"actorsim.dll not found next to the tests ({dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "actorsim did not exit within 60 s");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Run_prints_Normal_NC_for_the_BAR_under_6_9_and_Device_under_6_8()
    {
        var (exit, output, _) = Run("run");
        Assert.Equal(0, exit);
        var blocks = output.Split("kernel ");
        Assert.Contains("s2=Device-nGnRE", blocks.Single(b => b.StartsWith("6.8 ")));
        Assert.Contains("s2=Normal-NC", blocks.Single(b => b.StartsWith("6.9 ")));
        Assert.Equal(3, output.Split("invariants: hold").Length - 1);
    }

    [Fact]
    public void Run_with_one_kernel_runs_only_that_rule_set()
    {
        var (exit, output, _) = Run("run", "--kernel", "6.17", "--no-fwb");
        Assert.Equal(0, exit);
        Assert.Contains("kernel 6.17 fwb=0", output);
        Assert.DoesNotContain("kernel 6.9", output);
        Assert.Contains("memattr=0x5", output); // Normal-NC without FWB is still 0x5
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("run", "--kernel", "5.10")]
    [InlineData("run", "--frobnicate")]
    [InlineData("replay")]
    public void Bad_usage_exits_2_with_a_message_on_stderr(params string[] args)
    {
        var (exit, _, err) = Run(args);
        Assert.Equal(2, exit);
        Assert.StartsWith("actorsim", err);
    }

    [Fact]
    public void Help_lists_the_commands()
    {
        var (exit, output, _) = Run("--help");
        Assert.Equal(0, exit);
        Assert.Contains("run", output);
        Assert.Contains("kernels", output);
    }
}
