export function limitName(rustConst: string): string;
export function parseRustLimits(source: string): Record<string, number>;
export function limitsModule(limits: Record<string, number>): string;
