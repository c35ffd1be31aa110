import nlp from 'compromise';
import { tagNames } from '../lib/models/entity-tagger';

/** What the extractor reads from a tagged text: people, places and organisations. */
const names = (doc: ReturnType<typeof nlp>) => ({
  people: doc.people().out('array') as string[],
  places: doc.places().out('array') as string[],
  organizations: doc.organizations().out('array') as string[],
});

// Names in every position the rules care about: full names, honorifics, possessives, names that are
// also months or words, acronyms, organisations by suffix, places after prepositions, lowercase chat.
const SAMPLE = [
  'Bob Smith met Dr. Jane Goodall at Google in New York City.',
  'Microsoft and the United Nations signed an agreement in Paris with Angela Merkel.',
  'I went to the support group in Boston with Melanie yesterday.',
  "Caroline's sister May moved to Porto in May, and Will said he will visit her in April.",
  'Rich bought a rich chocolate cake for Mr. Brown and Mrs. Patel on Friday.',
  'The LGBTQ center near Lisbon hired Ana Silva, a former NASA engineer, last week.',
  'i met john and sarah at the mall, then we drove to san francisco.',
  'According to the notes, the budget review went well, although two questions about costs are still open.',
  'Acme Corp. and Globex Inc. merged; the new company is based in Austin, Texas.',
  'Professor Albert Einstein lectured at Princeton University and at the Sorbonne.',
  'The 5 GB file from GitHub took 3 seconds to download in Madeira.',
  'Sofia prefers the museum in Faro to the one in Coimbra, mostly for the view.',
  'Hey Mel! Good to see you! How have you been? Did Jordan and Taylor make it to the Lakers game?',
  'Uber-fast unique id generation, for Node.js and the browser.',
  'Barack Obama, the former president, spoke with Queen Elizabeth in London on Tuesday.',
  'We stayed at the Hilton on Fifth Avenue, next to St. Patrick\'s Cathedral, before flying to Tokyo.',
  // Contractions (a matched term may hide the next one) in front of names.
  "We've met Mr. O'Brien in Dublin, haven't we? I'd say John's been to Bank of America twice.",
  "They're moving to San Diego in June; she'll join Lockheed Martin and he's staying with Dr. Ruiz.",
];

describe('entity tagger (compromise trimmed to what names need)', () => {
  it.each(SAMPLE)('finds the same names as compromise’s full tagger: %s', (text) => {
    expect(names(tagNames(text))).toEqual(names(nlp(text)));
  });

  it('finds people, places and organisations', () => {
    const found = names(tagNames('Bob Smith met Dr. Jane Goodall at Google in New York City.'));
    expect(found.people).toEqual(['Bob Smith', 'Dr. Jane Goodall']);
    expect(found.places.map((place) => place.replace(/\.$/, ''))).toEqual(['New York City']);
    expect(found.organizations).toEqual(['Google']);
  });

  it('works when compromise has tagged text before it (its rules are then already parsed)', () => {
    jest.isolateModules(() => {
      const fresh = require('compromise') as typeof nlp;
      const text = SAMPLE[0]!;
      const before = names(fresh(text));
      const { tagNames: freshTagNames } = require('../lib/models/entity-tagger') as typeof import('../lib/models/entity-tagger');
      expect(names(freshTagNames(text))).toEqual(before);
    });
  });

  it('leaves compromise usable as before (its own tagger is not changed)', () => {
    tagNames('Melanie visited Sintra.');
    expect(names(nlp('Melanie visited Sintra with Bob Smith.')).people).toEqual(['Melanie', 'Bob Smith.']);
  });
});
