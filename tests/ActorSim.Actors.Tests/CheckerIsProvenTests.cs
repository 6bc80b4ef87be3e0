using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;

namespace ActorSim.Actors.Tests;

/// <summary>The invariant checker is not vacuous: with a test-only fault switch that skips the
/// mmu_invalidate_retry check, a seeded run installs stale leaves, and the checker reports
/// the violation with the sequence number of the offending event, within the run. Deterministic mode
/// (one dispatcher thread): the same interleaving, so the same races, on every machine and load.</summary>
public class CheckerIsProvenTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(true))
{
    private async Task<(Violations Found, long Retries)> Run(string? fault, string runId)
    {
        var host = await SimHost.StartAsync(Sys, runId, KernelPolicy.Of("6.9"), SeededWorkload.Devices(), SeededWorkload.Vms(2),
            new SimHostOptions(TestFault: fault));
        Sys.EventStream.Subscribe(TestActor, typeof(DomainEventPublished));
        var w = await SeededWorkload.SetUpAsync(host, seed: 3, vms: 2, vcpus: 4);
        for (var i = 0; i < 300; i++)
        {
            await w.RoundAsync();
            var v = await host.Ask<Violations>(host.Checker, new GetViolations());
            if (v.Items.Length > 0) return (v, w.Results.GetValueOrDefault(FaultResult.Retry));
        }
        return (await host.Ask<Violations>(host.Checker, new GetViolations()), w.Results.GetValueOrDefault(FaultResult.Retry));
    }

    [Fact]
    public async Task Skipping_the_invalidation_retry_is_reported_with_the_offending_event()
    {
        var (found, _) = await Run("skip-invalidate-retry", "broken");
        var first = Assert.Single(found.Items.Where(x => x.Violation.Invariant == "I5").Take(1));
        Assert.StartsWith("broken/kvm-", first.Stream);
        Assert.True(first.Seq > 0);
        Assert.Contains("installed with seq", first.Violation.Detail);
    }

    [Fact]
    public async Task Without_the_fault_the_same_run_retries_and_no_invariant_breaks()
    {
        var (found, retries) = await Run(null, "sound");
        Assert.Empty(found.Items);
        Assert.True(retries > 0, "the workload never raced a fault against an invalidation");
    }
}
