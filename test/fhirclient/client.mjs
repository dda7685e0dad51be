// Drives fhirgate with fhir-kit-client, as a FHIR application would:
// CapabilityStatement, create, read, search, conditional update (Twiin),
// the $abort operation and the Task reads (E-Rezept: list with paging,
// one Task with its documents, a pharmacy receipt read), and an error
// answer. Prints one line
// per step ("ok <step> …"); any surprise throws and exits non-zero.
// Environment: TWIIN, ERP (base URLs), GTK, SIM (the simulators, for
// demo tokens).
import { Client } from 'fhir-kit-client';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const token = async (url) => (await (await fetch(url)).text()).trim();
const check = (cond, what, got) => {
  if (!cond) throw new Error(`${what}: got ${JSON.stringify(got)}`);
};

const ident = 'urn:uuid:7e3c1c59-4b7e-4c8f-9a3c-0d1b2c3d4e5f';
const tanp = 'https://www.twiin.nl/tanp/CodeSystem/tanp-codes';
const party = (value) => ({ identifier: { system: 'http://fhir.nl/fhir/NamingSystem/ura', value } });
const notification = {
  resourceType: 'Task',
  identifier: [{ system: 'urn:ietf:rfc:3986', value: ident }],
  groupIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:484639e6-e647-464c-8722-6e8a73cda4e0' },
  status: 'requested',
  intent: 'proposal',
  code: { coding: [{ system: tanp, code: 'pull-notification' }] },
  for: { identifier: { system: 'http://fhir.nl/fhir/NamingSystem/bsn', value: '172642863' } },
  requester: { agent: party('sending-gtk'), onBehalfOf: party('12345678') },
  owner: party('87654321'),
  input: [
    { type: { coding: [{ system: tanp, code: 'authorization-base' }] }, valueString: 'c2VjcmV0LXRva2Vu' },
    { type: { coding: [{ system: tanp, code: 'read-resource' }] }, valueReference: { reference: 'Observation/123' } },
  ],
};
const cancellation = {
  resourceType: 'Task',
  identifier: [{ system: 'urn:ietf:rfc:3986', value: ident }],
  status: 'cancelled',
  intent: 'proposal',
};

const twiin = new Client({ baseUrl: env('TWIIN'), bearerToken: await token(`${env('GTK')}/demo/token?sub=sending-gtk-1`) });

const cs = await twiin.capabilityStatement();
const task = cs.rest[0].resource.find((r) => r.type === 'Task');
const codes = task.interaction.map((i) => i.code);
check(cs.fhirVersion === '3.0.2' && ['read', 'create', 'update', 'search-type'].every((c) => codes.includes(c)), 'CapabilityStatement', codes);
console.log('ok capabilities', codes.join(','));

await twiin.create({ resourceType: 'Task', body: notification });
console.log('ok create');

const search = await twiin.search({ resourceType: 'Task', searchParams: { identifier: `urn:ietf:rfc:3986|${ident}` } });
check(search.resourceType === 'Bundle' && search.type === 'searchset' && search.total === 1 && search.entry.length === 1, 'search', search);
const id = search.entry[0].resource.id;
console.log('ok search', id);

const read = await twiin.read({ resourceType: 'Task', id });
check(read.status === 'requested' && read.identifier[0].value === ident && !JSON.stringify(read).includes('authorization-base'), 'read', read);
console.log('ok read', read.status);

await twiin.update({ resourceType: 'Task', searchParams: { identifier: `urn:ietf:rfc:3986|${ident}` }, body: cancellation });
const after = await twiin.read({ resourceType: 'Task', id });
check(after.status === 'cancelled', 'read after the conditional update', after);
console.log('ok conditional-update', after.status);

try {
  await twiin.read({ resourceType: 'Task', id: 'ntf-999999' });
  throw new Error('read of an unknown id succeeded');
} catch (e) {
  check(e.response && e.response.status === 404 && e.response.data.resourceType === 'OperationOutcome', 'unknown id', e.response);
  console.log('ok not-found', e.response.data.issue[0].code);
}

const erp = new Client({ baseUrl: env('ERP'), bearerToken: await token(`${env('SIM')}/demo/token?role=insured&idNummer=X110000004`) });
await erp.operation({ resourceType: 'Task', id: '160.000.000.000.104.36', name: 'abort' });
console.log('ok $abort');

// E-Rezept reads: the insured person's list, paged and followed with the
// client's own nextPage; one Task with its documents; a pharmacy's
// receipt read with the secret.
const insured = new Client({ baseUrl: env('ERP'), bearerToken: await token(`${env('SIM')}/demo/token?role=insured&idNummer=X110000100`) });
const page1 = await insured.search({ resourceType: 'Task', searchParams: { _sort: '-authored-on', _count: 4 } });
check(page1.type === 'searchset' && page1.total === 6 && page1.entry.length === 4, 'E-Rezept list', page1);
check(page1.entry.every((e) => !JSON.stringify(e.resource).includes('GEM_ERP_NS_AccessCode')), 'E-Rezept list shows no AccessCode', page1);
const page2 = await insured.nextPage({ bundle: page1 });
check(page2 && page2.entry.length === 2 && !page2.link.some((l) => l.relation === 'next'), 'E-Rezept list, next page', page2);
console.log('ok erp-search', page1.entry.length + page2.entry.length, 'of', page1.total);

const detail = await insured.read({ resourceType: 'Task', id: '160.000.000.000.203.30' });
const erpTask = detail.entry[0].resource;
check(detail.type === 'collection' && erpTask.resourceType === 'Task' && erpTask.meta.profile[0].endsWith('GEM_ERP_PR_Task|1.5'), 'E-Rezept read', detail);
check(detail.entry[1].fullUrl === `urn:uuid:${erpTask.input[0].valueReference.reference}`, 'E-Rezept read: the prescription is the referenced entry', detail);
console.log('ok erp-read', erpTask.status, detail.entry[1].resource.type);

const seed = await (await fetch(`${env('SIM')}/admin/tasks/160.000.000.000.203.30`)).json();
const pharmacy = new Client({ baseUrl: env('ERP'), bearerToken: await token(`${env('SIM')}/demo/token?role=pharmacy&idNummer=3-SMC-B-Testkarte-883110000116873`) });
const receipt = await pharmacy.request(`Task/160.000.000.000.203.30?secret=${seed.secret}`);
check(receipt.entry[0].resource.output[0].type.coding[0].code === '3' && receipt.entry[1].resource.type === 'document', 'E-Rezept receipt read', receipt);
console.log('ok erp-receipt', receipt.entry[1].resource.meta.profile[0]);
