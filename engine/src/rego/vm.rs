//! The fast path: the entrypoint compiled to regorus' register VM (RVM), measured at about
//! a sixth of the interpreter's cost per decision on the default policies.
//!
//! A VM holds per-execution state, so each evaluation borrows one from a small pool; regorus
//! resets rule caches, registers and the timer at the start of every execution, so nothing
//! leaks from one input to the next.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::{CompiledPolicy, Value};

use super::{ENTRYPOINT, one_line, timer};

/// VMs kept idle per bundle; more are created under load and dropped when returned.
const MAX_IDLE: usize = 64;

/// Instruction cap per evaluation: a second bound next to the wall-clock limit, which a
/// loaded machine stretches. regorus' default (25,000) is too small for real bundles.
const MAX_INSTRUCTIONS: usize = 5_000_000;

/// A compiled program and a pool of VMs to run it.
pub(super) struct VmPool {
    program: Arc<Program>,
    data: Value,
    strict_builtin_errors: bool,
    timeout: Duration,
    idle: Mutex<Vec<RegoVM>>,
}

impl std::fmt::Debug for VmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmPool")
            .field("instructions", &self.program.instructions.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl VmPool {
    /// Compiles the entrypoint; an error means the bundle uses something the VM does not
    /// support, and the interpreter serves instead.
    pub(super) fn compile(
        policy: &CompiledPolicy,
        data: Value,
        strict_builtin_errors: bool,
        timeout: Duration,
    ) -> Result<VmPool, String> {
        let program = Compiler::compile_from_policy(policy, &[ENTRYPOINT])
            .map_err(|e| one_line(&e.to_string()))?;
        let pool = VmPool {
            program,
            data,
            strict_builtin_errors,
            timeout,
            idle: Mutex::new(Vec::new()),
        };
        // Building one VM checks the data against the rule tree once, at load time.
        let vm = pool.new_vm()?;
        pool.give_back(vm);
        Ok(pool)
    }

    fn new_vm(&self) -> Result<RegoVM, String> {
        let mut vm = RegoVM::new();
        vm.load_program(self.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|e| one_line(&e.to_string()))?;
        vm.set_strict_builtin_errors(self.strict_builtin_errors);
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_execution_timer_config(Some(timer(self.timeout)));
        Ok(vm)
    }

    fn give_back(&self, vm: RegoVM) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(vm);
        }
    }

    /// Evaluates the entrypoint for one input.
    pub(super) fn evaluate(&self, input: Value) -> Result<Value, String> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut vm = match pooled {
            Some(vm) => vm,
            None => self.new_vm()?,
        };
        vm.set_input(input);
        let result = vm
            .execute_entry_point_by_name(ENTRYPOINT)
            .map_err(|e| one_line(&e.to_string()));
        // Drop the input now rather than holding it in an idle VM.
        vm.set_input(Value::Undefined);
        self.give_back(vm);
        result
    }
}
